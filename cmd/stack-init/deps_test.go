package main

import (
	"debug/elf"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
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

// unwanted are packages of the standard library that the init program
// must not link: encoding/json decoded its configuration once, and was the
// largest part of the init, with page faults and allocations of its own
// in every start (runtime/containerinit's config.go replaced it).
var unwanted = []string{"encoding/json"}

// TestStandardLibrary fails when the init program links a package of
// unwanted. The test binary cannot tell (the testing package links
// encoding/json itself), so it builds the program and reads its symbols;
// `go build` is also what the cgroup v2 VM's go shim does.
func TestStandardLibrary(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go tool to build the init program with")
	}
	bin := filepath.Join(t.TempDir(), "stack-init")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "github.com/stack-containers/stack/cmd/stack-init")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatalf("%s: symbols: %v", bin, err)
	}
	linked := map[string]string{}
	for _, s := range syms {
		for _, pkg := range unwanted {
			if _, ok := linked[pkg]; !ok && strings.HasPrefix(s.Name, pkg+".") {
				linked[pkg] = s.Name
			}
		}
	}
	for _, pkg := range unwanted {
		if sym, ok := linked[pkg]; ok {
			t.Errorf("cmd/stack-init links %s (symbol %s); keep it out of the init", pkg, sym)
		}
	}
	if len(syms) == 0 {
		t.Fatalf("%s has no symbols to check", bin)
	}
}
