package main

import (
	"debug/buildinfo"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
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

// exportOnly are the modules, or the prefixes of their paths, that only
// the export program may link: the Kubernetes API types and what they
// bring (json-iterator, yaml v2, inf.v0, cbor...). Their initialisers cost
// about 1.3 ms of the 2.5 ms that every process of stack paid at its start
// when it linked them.
var exportOnly = []string{
	"k8s.io/",
	"sigs.k8s.io/",
	"github.com/json-iterator/go",
	"github.com/modern-go/",
	"github.com/fxamacker/cbor",
	"go.yaml.in/yaml/v2",
	"gopkg.in/yaml.v2",
	"gopkg.in/inf.v0",
}

// TestEmbeddedExportStartCosts fails when stack as `make build` builds
// it (-tags stackinit, the export program embedded) links a module of
// exportOnly or startCosts. The test binary cannot tell: it is built
// without the tag, and links the export itself. So this builds stack
// with the tag, embedding empty stand-ins for the two programs (what it
// links does not depend on them), and reads the modules of its build
// information.
func TestEmbeddedExportStartCosts(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go tool to build stack with")
	}
	dir := t.TempDir()
	standIn := filepath.Join(dir, "empty")
	if err := os.WriteFile(standIn, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	replace := map[string]string{}
	for _, name := range []string{"stack-init.elf", "stack-export.elf"} {
		p, err := filepath.Abs(name)
		if err != nil {
			t.Fatal(err)
		}
		replace[p] = standIn
	}
	overlay, err := json.Marshal(map[string]map[string]string{"Replace": replace})
	if err != nil {
		t.Fatal(err)
	}
	overlayFile := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlayFile, overlay, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "stack")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "stackinit", "-overlay", overlayFile, "-o", bin, "github.com/stack-containers/stack/cmd/stack")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if len(bi.Deps) == 0 {
		t.Fatal("the tagged stack's build information lists no modules")
	}
	for _, m := range bi.Deps {
		for _, unwanted := range append(exportOnly, startCosts...) {
			if m.Path == unwanted || strings.HasSuffix(unwanted, "/") && strings.HasPrefix(m.Path, unwanted) {
				t.Errorf("stack (-tags stackinit) links module %s; its initialisers cost every process of stack at its start (only cmd/stack-export may link it)", m.Path)
			}
		}
	}
}
