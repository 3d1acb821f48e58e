package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stack-containers/stack/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Cleanup()
	os.Exit(code)
}

// testID names a test's cgroups so that nothing of another test or run is
// touched.
func testID(t *testing.T) string {
	var raw [4]byte
	if _, err := rand.Read(raw[:]); err != nil {
		t.Fatal(err)
	}
	return "stack-test-" + hex.EncodeToString(raw[:])
}

// skipOnPureV2 skips a test of the harness's cgroups where the harness
// refuses to run (errPureV2); CI runs it on the hybrid machines.
func skipOnPureV2(t *testing.T) {
	t.Helper()
	if pureCgroupV2() {
		t.Skip(errPureV2)
	}
}

// testCgroups makes a test's own cgroup in every hierarchy, as a run does,
// and removes it at the end, failing the test if anything was left below.
func testCgroups(t *testing.T) string {
	t.Helper()
	skipOnPureV2(t)
	id := testID(t)
	if err := keepCgroups(id); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := removeCgroups(id); err != nil {
			t.Errorf("cgroups left: %v", err)
		}
	})
	return id
}

func newTestWatcher(t *testing.T) *procWatcher {
	t.Helper()
	testenv.RequireRoot(t)
	w, err := newProcWatcher()
	if err != nil {
		t.Fatalf("process events: %v", err)
	}
	t.Cleanup(func() {
		if err := w.close(); err != nil {
			t.Errorf("close watcher: %v", err)
		}
	})
	return w
}

// The watcher sees the exec of exactly the command line asked for, and its
// death by SIGKILL, timed after the process was started.
func TestProcWatcherExecAndExit(t *testing.T) {
	w := newTestWatcher(t)
	argv := sleepArgv()
	tr := newTracker(w, argv)
	defer tr.stop()
	// Another sleep of another length must not be counted.
	other := exec.Command("/bin/sleep", "0.01")
	before := monotonic()
	cmd := exec.Command(argv[0], argv[1:]...)
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := tr.untilExecs(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if !tr.alive[cmd.Process.Pid] || len(tr.alive) != 1 {
		t.Fatalf("alive %v, want only pid %d", tr.alive, cmd.Process.Pid)
	}
	if tr.lastExec < before || tr.lastExec > monotonic() {
		t.Fatalf("exec at %v, outside [%v, now]", tr.lastExec, before)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := tr.untilGone(ctx); err != nil {
		t.Fatal(err)
	}
	if len(tr.exits) != 1 || tr.exits[0].pid != cmd.Process.Pid || tr.exits[0].signal != int(syscall.SIGKILL) {
		t.Fatalf("exits %+v, want pid %d killed by SIGKILL", tr.exits, cmd.Process.Pid)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("killed sleep exited 0")
	}
	if err := other.Wait(); err != nil {
		t.Fatal(err)
	}
}

// The floor runs its containers in namespaces and a cgroup of their own,
// and down leaves no process and no cgroup behind.
func TestFloorStartAndDown(t *testing.T) {
	w := newTestWatcher(t)
	rootfs := testenv.BusyboxRootfs(t)
	id := testCgroups(t)
	cgroupDir := filepath.Join("/sys/fs/cgroup/memory", id)
	f := newFloor(rootfs, cgroupDir)
	b := &batch{id: "b1", n: 3, argv: sleepArgv()}
	tr := newTracker(w, b.argv)
	defer tr.stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f.start(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := tr.untilExecs(ctx, b.n); err != nil {
		t.Fatal(err)
	}
	for pid := range tr.alive {
		// PID 1 of its own pid namespace, in its own memory cgroup.
		status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(status), "\nNSpid:\t"+strconv.Itoa(pid)+"\t1\n") {
			t.Errorf("pid %d is not PID 1 of a new pid namespace:\n%s", pid, status)
		}
		cg, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cgroup"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(cg), ":memory:/"+id+"/floor-b1-c") {
			t.Errorf("pid %d is not in a floor cgroup: %s", pid, cg)
		}
	}
	if err := f.down(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := tr.untilGone(ctx); err != nil {
		t.Fatal(err)
	}
	left, err := filepath.Glob(filepath.Join(cgroupDir, "floor-*"))
	if err != nil || len(left) > 0 {
		t.Fatalf("cgroups left after down: %v %v", left, err)
	}
	if mounts, err := mountsUnder(rootfs); err != nil || len(mounts) > 0 {
		t.Fatalf("mounts left in the rootfs: %v %v", mounts, err)
	}
}

// The cleanup reports a cgroup a system left behind, and still removes it.
func TestRemoveCgroupsReportsLeaks(t *testing.T) {
	testenv.RequireRoot(t)
	skipOnPureV2(t)
	id := testID(t)
	leak := filepath.Join("/sys/fs/cgroup/memory", id, "floor-b9-c0")
	if err := os.MkdirAll(leak, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join("/sys/fs/cgroup/pids", id, "stack"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := keepCgroups(id); err != nil {
		t.Fatal(err)
	}
	err := removeCgroups(id)
	if err == nil || !strings.Contains(err.Error(), leak) || strings.Contains(err.Error(), "pids") {
		t.Fatalf("removeCgroups: %v, want only %s reported", err, leak)
	}
	if left, err := filepath.Glob("/sys/fs/cgroup/*/" + id); err != nil || len(left) > 0 {
		t.Fatalf("not removed: %v %v", left, err)
	}
}

// A floor container that cannot start says why, in the words of the tool
// that failed, and leaves no cgroup behind.
func TestFloorReportsFailedLaunch(t *testing.T) {
	testenv.RequireRoot(t)
	id := testCgroups(t)
	missing := filepath.Join(t.TempDir(), "no-rootfs")
	f := newFloor(missing, filepath.Join("/sys/fs/cgroup/memory", id))
	b := &batch{id: "b1", n: 2, argv: []string{"/bin/true"}}
	ctx := context.Background()
	err := f.run(ctx, b)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("run on a missing rootfs: %v, want an error naming %s", err, missing)
	}
	if err := f.down(ctx, b); err != nil {
		t.Fatal(err)
	}
}

// The Go floor runs each container as PID 1 of new namespaces (its net
// namespace not the host's), chrooted, in a memory cgroup of its own; with
// a network each has its veth end, eth0; down leaves no process, cgroup or
// device behind.
func TestGoFloorStartAndDown(t *testing.T) {
	w := newTestWatcher(t)
	rootfs := testenv.BusyboxRootfs(t)
	id := testCgroups(t)
	cg, err := memoryCgroups(id)
	if err != nil {
		t.Fatal(err)
	}
	net, err := newBenchNetns()
	if err != nil {
		t.Fatal(err)
	}
	defer net.close()
	errs, err := os.Create(filepath.Join(t.TempDir(), "errors"))
	if err != nil {
		t.Fatal(err)
	}
	defer errs.Close()
	hostNet, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := buildGoFloor(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []*goFloor{newGoFloor(bin, rootfs, cg, nil, errs), newGoFloor(bin, rootfs, cg, net, errs)} {
		b := &batch{id: "b1", n: 3, argv: sleepArgv()}
		tr := newTracker(w, b.argv)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := f.start(ctx, b); err != nil {
			t.Fatalf("%s: %v", f.name(), err)
		}
		if err := tr.untilExecs(ctx, b.n); err != nil {
			t.Fatalf("%s: %v", f.name(), err)
		}
		for pid := range tr.alive {
			proc := filepath.Join("/proc", strconv.Itoa(pid))
			status, err := os.ReadFile(filepath.Join(proc, "status"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(status), "\nNSpid:\t"+strconv.Itoa(pid)+"\t1\n") {
				t.Errorf("%s: pid %d is not PID 1 of a new pid namespace:\n%s", f.name(), pid, status)
			}
			if root, err := os.Readlink(filepath.Join(proc, "root")); err != nil || root != rootfs {
				t.Errorf("%s: pid %d has root %q (%v), want %s", f.name(), pid, root, err, rootfs)
			}
			cgroups, err := os.ReadFile(filepath.Join(proc, "cgroup"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(cgroups), "/"+id+"/gofloor-b1/c") {
				t.Errorf("%s: pid %d is not in a floor cgroup: %s", f.name(), pid, cgroups)
			}
			if ns, err := os.Readlink(filepath.Join(proc, "ns", "net")); err != nil || ns == hostNet {
				t.Errorf("%s: pid %d is in net namespace %s (%v), the host's is %s", f.name(), pid, ns, err, hostNet)
			}
			devs, err := os.ReadFile(filepath.Join(proc, "net", "dev"))
			if err != nil {
				t.Fatal(err)
			}
			if has := strings.Contains(string(devs), "eth0:"); has != (f.net != nil) {
				t.Errorf("%s: pid %d has eth0: %v, want %v:\n%s", f.name(), pid, has, f.net != nil, devs)
			}
		}
		if err := f.down(ctx, b); err != nil {
			t.Fatalf("%s: %v", f.name(), err)
		}
		if err := tr.untilGone(ctx); err != nil {
			t.Fatalf("%s: %v", f.name(), err)
		}
		tr.stop()
		cancel()
		left, err := filepath.Glob(filepath.Join(cg.dir, "gofloor-*"))
		if err != nil || len(left) > 0 {
			t.Fatalf("%s: cgroups left after down: %v %v", f.name(), left, err)
		}
	}
	// The floor's own run, to the end of its containers.
	f := newGoFloor(bin, rootfs, cg, nil, errs)
	if err := f.run(context.Background(), &batch{id: "b2", n: 3, argv: []string{"/bin/true"}}); err != nil {
		t.Fatalf("run: %v", err)
	}
	if err := newGoFloor(bin, rootfs, cg, net, errs).run(context.Background(), &batch{id: "b3", n: 1, argv: []string{"/bin/true"}}); !errors.Is(err, errNotMeasured) {
		t.Fatalf("run with veths: %v, want it not measured", err)
	}
	if left, err := filepath.Glob(filepath.Join(cg.dir, "gofloor-*")); err != nil || len(left) > 0 {
		t.Fatalf("cgroups left after run: %v %v", left, err)
	}
	if left, err := net.links(); err != nil || len(left) > 0 {
		t.Fatalf("devices left in the run's namespace: %v %v", left, err)
	}
	if msg, _ := os.ReadFile(errs.Name()); len(msg) > 0 {
		t.Errorf("the containers said: %s", msg)
	}
}
