package main

import (
	"debug/buildinfo"
	"debug/elf"
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

// pullOnly are the packages, or the prefixes of their paths, that only
// the pull program may link: the registry client and what it brings. Their
// initialisers cost about 0.9 ms of the 1.7 ms that every process of stack
// paid at its start when it linked them.
var pullOnly = []string{
	"github.com/google/go-containerregistry/pkg/v1/remote",
	"github.com/google/go-containerregistry/pkg/authn",
	"github.com/google/go-containerregistry/pkg/v1/tarball",
	"github.com/google/go-containerregistry/pkg/v1/layout",
	"github.com/docker/",
	"github.com/klauspost/compress",
	"github.com/sirupsen/logrus",
	"net/http",
	"crypto/tls",
	"crypto/x509",
	"mime",
	// pkg/name and go-digest compile eight regular expressions at their
	// start (about 0.36 ms); package image parses references itself.
	"github.com/google/go-containerregistry/pkg/name",
	"github.com/opencontainers/go-digest",
}

// embeddedPrograms are the files that `make build` maps onto the
// programs stack embeds (-tags stackinit).
var embeddedPrograms = []string{"stack-init.elf", "stack-export.elf", "stack-pull.elf"}

// standInOverlay writes an -overlay file that maps the embedded programs
// onto empty stand-ins (what stack links does not depend on them) and
// returns its path.
func standInOverlay(t *testing.T, dir string) string {
	t.Helper()
	standIn := filepath.Join(dir, "empty")
	if err := os.WriteFile(standIn, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	replace := map[string]string{}
	for _, name := range embeddedPrograms {
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
	return overlayFile
}

// under reports whether path is one of paths, or below one of them (or
// starts with one that ends in a slash).
func under(path string, paths []string) bool {
	for _, p := range paths {
		if path == p || strings.HasPrefix(path, p+"/") || strings.HasSuffix(p, "/") && strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// taggedStack builds stack as `make build` does (-tags stackinit),
// embedding empty stand-ins for the programs (what it links does not
// depend on them), and returns the binary's path. Under the v2 VM's go
// shim, which hands out the binaries it prebuilt, the programs are the
// real ones; the binary keeps its symbol table either way.
func taggedStack(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go tool to build stack with")
	}
	dir := t.TempDir()
	overlayFile := standInOverlay(t, dir)
	bin := filepath.Join(dir, "stack")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "stackinit", "-overlay", overlayFile, "-o", bin, "github.com/stack-containers/stack/cmd/stack")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestEmbeddedExportStartCosts fails when stack as `make build` builds
// it (-tags stackinit, the export program embedded) links a module of
// exportOnly or startCosts. The test binary cannot tell: it is built
// without the tag, and links the export itself; the tagged binary's
// build information lists the modules it links.
func TestEmbeddedExportStartCosts(t *testing.T) {
	bi, err := buildinfo.ReadFile(taggedStack(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(bi.Deps) == 0 {
		t.Fatal("the tagged stack's build information lists no modules")
	}
	for _, m := range bi.Deps {
		if under(m.Path, append(exportOnly, startCosts...)) {
			t.Errorf("stack (-tags stackinit) links module %s; its initialisers cost every process of stack at its start (only cmd/stack-export may link it)", m.Path)
		}
	}
}

// TestEmbeddedPullStartCosts fails when stack as `make build` builds it
// (-tags stackinit, the pull program embedded) links a package of
// pullOnly. Some of them are the standard library's, which build
// information does not list; the symbol table names the functions of
// every package linked, its initialiser among them.
func TestEmbeddedPullStartCosts(t *testing.T) {
	f, err := elf.Open(taggedStack(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatalf("the tagged stack's symbol table: %v", err)
	}
	linked := map[string]bool{}
	for _, sym := range syms {
		if elf.ST_TYPE(sym.Info) != elf.STT_FUNC {
			continue
		}
		for _, p := range pullOnly {
			if strings.HasPrefix(sym.Name, strings.TrimSuffix(p, "/")+".") || under(sym.Name, []string{p}) {
				linked[p] = true
			}
		}
		if strings.HasPrefix(sym.Name, "github.com/stack-containers/stack/image.") {
			linked["image"] = true
		}
	}
	if !linked["image"] {
		t.Fatalf("no function of package image, which stack links, among the %d symbols: the check cannot see what is linked", len(syms))
	}
	for _, p := range pullOnly {
		if linked[p] {
			t.Errorf("stack (-tags stackinit) links %s; its initialisers cost every process of stack at its start (only cmd/stack-pull may link it)", p)
		}
	}
}
