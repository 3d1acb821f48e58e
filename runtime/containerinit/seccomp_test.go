package containerinit

import (
	"slices"
	"testing"

	"github.com/stack-containers/stack/internal/capability"
	"github.com/stack-containers/stack/seccomp"
)

// TestFilterIsTheCompiledProgram checks that what the init installs is
// what the seccomp package compiled, flags and instructions, once through
// the configuration's encoding (as runtime's confinement hands them over).
// The init decodes them itself, so as not to link the compiler.
func TestFilterIsTheCompiledProgram(t *testing.T) {
	prog, err := seccomp.Default().Compile(capability.Default)
	if err != nil {
		t.Fatal(err)
	}
	prog.Flags = 3 // any bits: the encoding must carry them
	payload, err := EncodeConfig(&Config{Process: Process{Seccomp: &Filter{Flags: prog.Flags, Instructions: prog.Encode()}}})
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	if err := decodeConfig(payload, &cfg); err != nil {
		t.Fatal(err)
	}
	f := cfg.Seccomp
	if f.Flags != prog.Flags {
		t.Errorf("flags %d through the configuration, want %d", f.Flags, prog.Flags)
	}
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
