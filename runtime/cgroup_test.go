package runtime

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stack-containers/stack/cgroup"
	"github.com/stack-containers/stack/internal/testenv"
)

// testCgroup creates a cgroup with r under a parent unique to the test,
// removed with everything in it when the test ends.
func testCgroup(t *testing.T, r cgroup.Resources) cgroup.Cgroup {
	t.Helper()
	testenv.RequireRoot(t)
	d, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	parent := "stack-test-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		if err := d.Load(parent).Destroy(); err != nil {
			t.Errorf("destroy test cgroup %s: %v", parent, err)
		}
	})
	cg, err := d.Create(parent+"/web", r)
	if err != nil {
		t.Fatal(err)
	}
	return cg
}

// The seed's experiment: a cgroup of 2000000 bytes. Only the program is
// charged there, not the Go init, so a small program runs.
func TestMemoryLimitSmallProgramRuns(t *testing.T) {
	cg := testCgroup(t, cgroup.Resources{Memory: 2000000})
	spec := newSpec(t, testenv.BusyboxRootfs(t), "echo", "hello")
	spec.Cgroup = cg
	out, st := run(t, spec)
	kills, err := cg.OOMKills()
	if err != nil {
		t.Fatal(err)
	}
	if st.Code != 0 || out != "hello\n" || kills != 0 {
		t.Errorf("echo under 2 MB: exit %+v, output %q, %d OOM kills; want it to run", st, out, kills)
	}
}

// The seed's mem.sh reads /dev/urandom into a shell variable until the
// OOM killer ends it.
func TestMemoryLimitOOMKill(t *testing.T) {
	cg := testCgroup(t, cgroup.Resources{Memory: 2000000})
	rootfs := testenv.NewBusyboxRootfs(t)
	script := "#!/bin/sh\nrandom=\"$(dd if=/dev/urandom ibs=20000)\"\n"
	if err := os.WriteFile(filepath.Join(rootfs, "mem.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	spec := newSpec(t, rootfs, "/mem.sh")
	spec.Cgroup = cg
	_, st := run(t, spec)
	kills, err := cg.OOMKills()
	if err != nil {
		t.Fatal(err)
	}
	if !st.Signaled || st.Signal != syscall.SIGKILL || kills == 0 {
		t.Errorf("mem.sh under 2 MB: exit %+v, %d OOM kills; want killed by the OOM killer", st, kills)
	}
}

func TestCgroupPlacementAndNamespace(t *testing.T) {
	cg := testCgroup(t, cgroup.Resources{Memory: 64 << 20, Pids: 64})
	spec := newSpec(t, testenv.BusyboxRootfs(t), "sh", "-c", "cat /proc/self/cgroup; sleep 1000")
	spec.Namespaces = append(spec.Namespaces, "cgroup")
	spec.Cgroup = cg
	var out strings.Builder
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	spec.Stdout = w
	c, err := Start(spec)
	w.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	defer c.Cleanup()
	procs, err := cg.Procs()
	if err != nil {
		t.Fatal(err)
	}
	inside := false
	for _, p := range procs {
		inside = inside || p == c.Pid()
	}
	if !inside {
		t.Errorf("pid %d is not in cgroup %s (which holds %v)", c.Pid(), cg.Path(), procs)
	}
	// Seen from the host, the program is in the cgroup in every
	// hierarchy the driver manages (v1: each joined by the init's thread
	// through its tasks file), not only in the memory controller's.
	host, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", c.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(host)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) == 3 && managedHierarchy(f[1], cg.Path()) && !strings.HasSuffix(f[2], "/"+cg.Path()) {
			t.Errorf("the program is outside its cgroup %s: %q", cg.Path(), line)
		}
	}
	// A process entering the container joins the same cgroup: the root of
	// the container's cgroup namespace, which it enters too.
	execOut, st, err := execIn(t, c, ExecSpec{Args: []string{"cat", "/proc/self/cgroup"}, Cgroup: cg})
	if err != nil || st.Code != 0 {
		t.Fatalf("exec: %v, %+v:\n%s", err, st, execOut)
	}
	for _, line := range strings.Split(strings.TrimSpace(execOut), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) == 3 && managedHierarchy(f[1], cg.Path()) && f[2] != "/" {
			t.Errorf("the entering process is outside the container's cgroup: %q", line)
		}
	}
	buf := make([]byte, 4096)
	n, _ := r.Read(buf)
	r.Close()
	out.Write(buf[:n])
	if err := c.Cleanup(); err != nil {
		t.Fatal(err)
	}
	// The hierarchy that holds the limits: v1's memory controller
	// ("4:memory:/"), or v2's one unified hierarchy ("0::/"), the only
	// line a pure v2 host has.
	d, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}
	hierarchy := ":memory:"
	if d.Version() == 2 {
		hierarchy = "0::"
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.Contains(line, hierarchy) {
			continue
		}
		found = true
		if !strings.HasSuffix(line, ":/") {
			t.Errorf("the container's cgroup is not the root of its cgroup namespace: %q", line)
		}
	}
	if !found {
		t.Errorf("no %q line in the container's /proc/self/cgroup:\n%s", hierarchy, out.String())
	}
}

// managedHierarchy reports whether the driver made cgroup path in the
// hierarchy of a /proc/PID/cgroup line's controllers field: v1 mounts
// each at /sys/fs/cgroup/<controllers>, a pure v2 host its one hierarchy
// (an empty field) at /sys/fs/cgroup.
func managedHierarchy(controllers, path string) bool {
	st, err := os.Stat(filepath.Join("/sys/fs/cgroup", controllers, path))
	return err == nil && st.IsDir()
}
