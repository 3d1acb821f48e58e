package main

import (
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// ours are the packages of this module that the init may link: each one
// imports only the standard library and golang.org/x/sys/unix.
var ours = map[string]bool{
	"github.com/stack-containers/stack/cmd/stack-init":        true,
	"github.com/stack-containers/stack/runtime/containerinit": true,
	"github.com/stack-containers/stack/internal/linux":        true,
}

// TestDependencies fails when the init program links more than the
// standard library, golang.org/x/sys/unix and the few packages of ours
// above. Every process of every container pays for each initialiser and
// page of the init at its start: the netlink, nftables, eBPF and seccomp
// compiler packages of the supervisor's side cost about a tenth of the
// init's CPU time before this split.
func TestDependencies(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("the go tool is not in PATH (%v): cannot list the init's dependencies", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if !ours[p] && p != "golang.org/x/sys/unix" {
			t.Errorf("cmd/stack-init links %s; the init may only link the standard library, golang.org/x/sys/unix and %v", p, slices.Sorted(maps.Keys(ours)))
		}
	}
}
