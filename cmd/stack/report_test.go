package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"testing"
)

// TestRootHintOnlyForNonRoot: root's permission errors (a read-only file
// system, an immutable file) are not cured by sudo, so root gets no hint.
func TestRootHintOnlyForNonRoot(t *testing.T) {
	var stderr bytes.Buffer
	a := &app{stderr: &stderr}
	err := fmt.Errorf("stack %q: create state directory: %w", "demo", &fs.PathError{Op: "mkdir", Path: "/run/stack/demo", Err: syscall.EACCES})
	if code := a.report(err); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	want := "stack: error: stack \"demo\": create state directory: mkdir /run/stack/demo: permission denied\n"
	if os.Geteuid() != 0 {
		want += "hint: " + rootHint + "\n"
	}
	if stderr.String() != want {
		t.Errorf("euid %d: report printed\n%s\nwant\n%s", os.Geteuid(), stderr.String(), want)
	}
}
