package stacktest

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stack-containers/stack/internal/linux"
	"github.com/stack-containers/stack/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// TestLeftoversFoundAndRemoved leaves one thing of each kind behind, as a
// broken stack would, and checks that the Env names each and removes all.
func TestLeftoversFoundAndRemoved(t *testing.T) {
	testenv.RequireRoot(t)
	e := New(t)
	memory := e.host.V1["memory"]
	if memory == "" {
		memory = e.host.V2
	}
	cg := filepath.Join(memory, e.CgroupParent, "stack", "web")
	if err := os.MkdirAll(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	// One process is the Env's by its environment (a supervisor), the
	// other by its cgroup only (a container that execed its program).
	supervisor := exec.Command("sleep", "1000")
	supervisor.Env = e.Environ()
	container := exec.Command("sleep", "1001")
	for _, cmd := range []*exec.Cmd{supervisor, container} {
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Wait() })
	}
	if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(container.Process.Pid)), 0o644); err != nil {
		container.Process.Kill()
		t.Fatal(err)
	}
	mnt := filepath.Join(e.StateDir, "stack", "web", "rootfs")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}

	left := e.leftovers(0)
	t.Logf("found:\n%s", strings.Join(left, "\n"))
	for _, want := range []string{
		"process " + strconv.Itoa(supervisor.Process.Pid) + " (sleep 1000)",
		"process " + strconv.Itoa(container.Process.Pid) + " (sleep 1001)",
		"cgroup " + filepath.Join(memory, e.CgroupParent),
		"cgroup " + filepath.Dir(cg),
		"cgroup " + cg,
		"state " + filepath.Join(e.StateDir, "stack"),
	} {
		if !slices.Contains(left, want) {
			t.Errorf("leftovers do not name %q", want)
		}
	}
	if !slices.ContainsFunc(left, func(l string) bool { return strings.HasPrefix(l, "mount ") && strings.Contains(l, " "+mnt+" ") }) {
		t.Errorf("leftovers do not name the mount on %s", mnt)
	}
	if n := len(left); n != 7 {
		t.Errorf("%d leftovers; want the 7 made here", n)
	}

	e.removeLeftovers()
	if err := os.RemoveAll(filepath.Join(e.StateDir, "stack")); err != nil {
		t.Fatal(err)
	}
	if left := e.leftovers(0); len(left) > 0 {
		t.Errorf("left after removal: %q", left)
	}
}

func TestMountinfoPaths(t *testing.T) {
	for _, c := range []struct {
		p, dir string
		under  bool
	}{
		{"/tmp/a/001", "/tmp/a/001", true},
		{"/tmp/a/001/x", "/tmp/a/001", true},
		{"/tmp/a/0010", "/tmp/a/001", false},
		{linux.UnescapeMountinfo(`/tmp/a\040b/c`), "/tmp/a b", true},
	} {
		if got := underDir(c.p, c.dir); got != c.under {
			t.Errorf("underDir(%q, %q) = %v", c.p, c.dir, got)
		}
	}
}
