package main

import (
	"runtime/debug"
	"testing"
)

// TestDependencies fails when the init program links a module besides
// golang.org/x/sys and our own. Every process of every container pays
// for each initialiser and page of the init at its start: the netlink,
// nftables, eBPF and seccomp compiler packages of the supervisor's side
// cost about a tenth of the init's CPU time before runtime/containerinit
// was split out. It reads the modules linked into this test binary, which
// links this package and, besides the standard library, nothing else, so
// that it needs no go tool (the pure cgroup v2 VM has none).
func TestDependencies(t *testing.T) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("the test binary has no build information")
	}
	for _, m := range bi.Deps {
		if m.Path != "golang.org/x/sys" {
			t.Errorf("cmd/stack-init links module %s; the init may only link the standard library, golang.org/x/sys and this module", m.Path)
		}
	}
}
