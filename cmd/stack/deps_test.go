package main

import (
	"runtime/debug"
	"testing"
)

// startCosts are modules that stack must not link for the cost of their
// initialisers, which every process of stack (the CLI, each supervisor)
// pays at its start. go-seccomp-bpf/arch built the syscall maps of some
// twenty architectures, a third of a millisecond and 164 KB each time:
// package seccomp has tables of its own, generated from it.
var startCosts = []string{"github.com/elastic/go-seccomp-bpf"}

// TestStartCosts fails when stack links a module of startCosts. It reads
// the modules linked into this test binary (this package's, and those of
// the few packages its tests add), so that it needs no go tool.
func TestStartCosts(t *testing.T) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("the test binary has no build information")
	}
	if len(bi.Deps) == 0 {
		t.Fatal("the test binary's build information lists no modules")
	}
	for _, m := range bi.Deps {
		for _, unwanted := range startCosts {
			if m.Path == unwanted {
				t.Errorf("cmd/stack links module %s; its initialiser costs every process of stack at its start", m.Path)
			}
		}
	}
}
