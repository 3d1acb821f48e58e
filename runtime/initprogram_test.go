package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/testenv"
)

// The other tests run the test binary as the init; these run cmd/stack-init
// as `make build` embeds it, built once for the test binary.
var (
	stackInitOnce sync.Once
	stackInitELF  string
	stackInitErr  error
)

func embeddedInit(t *testing.T) *InitProgram {
	t.Helper()
	stackInitOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(goruntime.GOROOT(), "bin", "go")
		}
		dir, err := os.MkdirTemp("", "stack-init-")
		if err != nil {
			stackInitErr = err
			return
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "stack-init")
		cmd := exec.Command(goTool, "build", "-trimpath", "-o", bin, "github.com/stack-containers/stack/cmd/stack-init")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			stackInitErr = fmt.Errorf("go build cmd/stack-init: %w\n%s", err, out)
			return
		}
		elf, err := os.ReadFile(bin)
		stackInitELF, stackInitErr = string(elf), err
	})
	if stackInitErr != nil {
		t.Fatal(stackInitErr)
	}
	p := NewInitProgram(stackInitELF)
	if !p.embedded() {
		t.Fatal("the init program could not be put in a memfd: starts would re-execute the test binary")
	}
	return p
}

func TestNewInitProgramEmpty(t *testing.T) {
	if p := NewInitProgram(""); p != nil || p.embedded() {
		t.Errorf("NewInitProgram(\"\") = %v, embedded %v: want nil, re-executing the running binary", p, p.embedded())
	}
	if path, files := (*InitProgram)(nil).command(nil); path != "/proc/self/exe" || len(files) != 0 {
		t.Errorf("a nil program runs %s with %d descriptors, want /proc/self/exe and none", path, len(files))
	}
}

// TestEmbeddedInitMemfdSealed: what every start executes cannot be
// changed by anyone, the supervisor included.
func TestEmbeddedInitMemfdSealed(t *testing.T) {
	testenv.RequireRoot(t)
	p := embeddedInit(t)
	f := p.file()
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		bit  int
		name string
	}{{unix.F_SEAL_WRITE, "write"}, {unix.F_SEAL_GROW, "grow"}, {unix.F_SEAL_SHRINK, "shrink"}, {unix.F_SEAL_SEAL, "seal"}} {
		if seals&s.bit == 0 {
			t.Errorf("the memfd is not sealed against %s (seals %#x)", s.name, seals)
		}
	}
	if _, err := unix.Pwrite(int(f.Fd()), []byte{0}, 0); err == nil {
		t.Error("writing into the sealed memfd succeeded")
	}
	// The extra descriptors of a start stay the caller's, the memfd after
	// them, named by the child's own number for it.
	extra := make([]*os.File, 2, 8)
	path, files := p.command(extra)
	if want := "/proc/self/fd/5"; path != want || len(files) != 3 || files[2] != f {
		t.Errorf("command(2 files) = %s with %d files, want %s with the memfd third", path, len(files), want)
	}
	if len(extra) != 2 || extra[:3][2] != nil {
		t.Error("command appended the memfd into the caller's slice")
	}
}

// TestEmbeddedInitRunsContainers starts a container and an exec through
// stack-init: both are set up as with the stack binary, and the program
// inherits no descriptor of theirs, the memfd included.
func TestEmbeddedInitRunsContainers(t *testing.T) {
	testenv.RequireRoot(t)
	p := embeddedInit(t)
	spec := newSpec(t, testenv.BusyboxRootfs(t), "sleep", "1000")
	spec.Init = p
	spec.Hostname = "embedded"
	c := startContainer(t, spec)
	checkOnlyStdio(t, c.Pid(), "sleep")
	out, st, err := execIn(t, c, ExecSpec{Init: p, Args: []string{"sh", "-c", "hostname; ls /proc/self/fd; cat /proc/1/cmdline"}})
	if err != nil || st.Code != 0 {
		t.Fatalf("exec: %v, %+v:\n%s", err, st, out)
	}
	// ls lists its own descriptor for the directory too.
	if want := "embedded\n0\n1\n2\n3\nsleep\x001000\x00"; out != want {
		t.Errorf("exec printed %q, want %q", out, want)
	}
	if strings.Contains(out, "memfd") {
		t.Errorf("exec saw the memfd: %q", out)
	}
	// The init's own environment (initEnv) is not the program's.
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", c.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(environ), "GOMAXPROCS") || strings.Contains(string(environ), "GOGC") {
		t.Errorf("the program inherited the init's environment: %q", environ)
	}
}

// TestPreloadThenStart: a start that follows Preload, the memfd perhaps
// still being made, waits for it and runs the embedded program.
func TestPreloadThenStart(t *testing.T) {
	testenv.RequireRoot(t)
	embeddedInit(t)
	p := NewInitProgram(stackInitELF)
	p.Preload()
	spec := newSpec(t, testenv.BusyboxRootfs(t), "true")
	spec.Init = p
	if out, st := run(t, spec); st.Code != 0 {
		t.Fatalf("container after Preload: %+v:\n%s", st, out)
	}
	if !p.embedded() {
		t.Error("after Preload the program is not embedded")
	}
	(*InitProgram)(nil).Preload()
}
