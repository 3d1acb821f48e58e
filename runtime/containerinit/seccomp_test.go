package containerinit

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/stack-containers/stack/internal/capability"
	"github.com/stack-containers/stack/seccomp"
)

// TestFilterIsTheCompiledProgram checks that what the init installs is
// what the seccomp package compiled: the flags through the configuration's
// JSON, the instructions through Program.Encode's bytes. The init decodes
// them itself, so as not to link the compiler.
func TestFilterIsTheCompiledProgram(t *testing.T) {
	prog, err := seccomp.Default().Compile(capability.Default)
	if err != nil {
		t.Fatal(err)
	}
	prog.Flags = 3 // any bits: the JSON must carry them
	text, err := json.Marshal(prog)
	if err != nil {
		t.Fatal(err)
	}
	var f Filter
	if err := json.Unmarshal(text, &f); err != nil {
		t.Fatal(err)
	}
	if f.Flags != prog.Flags {
		t.Errorf("flags %d through %s, want %d", f.Flags, text, prog.Flags)
	}
	f.Instructions = prog.Encode()
	got, err := f.program()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, prog.Filter) {
		t.Errorf("decoded %d instructions unlike the %d compiled", len(got), len(prog.Filter))
	}
	for _, raw := range [][]byte{nil, make([]byte, 7)} {
		if _, err := (&Filter{Instructions: raw}).program(); err == nil {
			t.Errorf("a program of %d bytes: no error", len(raw))
		}
	}
}
