package main

import (
	"bytes"
	"os"
	"testing"
)

// TestGenerated fails when syscalls_gen.go is not what the generator
// writes: run `go generate ./seccomp`.
func TestGenerated(t *testing.T) {
	want, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../syscalls_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("seccomp/syscalls_gen.go is stale: run go generate ./seccomp")
	}
}
