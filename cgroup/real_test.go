package cgroup

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
	"github.com/stack-containers/stack/internal/testenv"
)

// These tests run against the host's real hierarchies, as root. Every one
// works below its own testParent and removes it.

// realDriver is a driver the host can run, with the controllers that can
// limit in it.
type realDriver struct {
	name   string
	d      Driver
	root   string // where to look for the cgroup's files (v1: memory's)
	limits map[string]bool
}

func realDrivers(t *testing.T, h Host) []realDriver {
	t.Helper()
	var ds []realDriver
	if len(h.V1) > 0 {
		lim := map[string]bool{}
		for _, c := range []string{"memory", "cpu", "pids"} {
			_, lim[c] = h.V1[c]
		}
		ds = append(ds, realDriver{"v1", NewV1(h.V1), h.V1["memory"], lim})
	}
	if h.V2 != "" {
		offered, err := controllers(filepath.Join(h.V2, "cgroup.controllers"))
		if err != nil {
			t.Fatal(err)
		}
		lim := map[string]bool{}
		for _, c := range offered {
			lim[c] = true
		}
		ds = append(ds, realDriver{"v2", NewV2(h.V2), h.V2, lim})
	}
	if len(ds) == 0 {
		t.Fatalf("host %v has no hierarchy to test", h)
	}
	return ds
}

// eachDriver runs test as a subtest per driver the host has, skipping a
// driver that offers no controller named in need, with a fresh parent
// cgroup that it removes afterwards.
func eachDriver(t *testing.T, need string, test func(t *testing.T, h Host, rd realDriver, parent string)) {
	h := hostFor(t)
	for _, rd := range realDrivers(t, h) {
		t.Run(rd.name, func(t *testing.T) {
			if need != "" && !rd.limits[need] {
				t.Skipf("%s offers no %s controller here (on a hybrid host v1 owns it)", rd.root, need)
			}
			parent := testParent(t, h)
			defer destroy(t, rd.d, parent)
			test(t, h, rd, parent)
		})
	}
}

// cgroupOf reads which cgroup pid is in, in the hierarchy of driver
// version v (v1: the memory hierarchy, or any when memory is not mounted).
func cgroupOf(t *testing.T, pid, v int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if v == 2 && parts[0] == "0" || v == 1 && slices.Contains(strings.Split(parts[1], ","), "memory") {
			return parts[2]
		}
	}
	t.Fatalf("pid %d: no v%d line in %q", pid, v, b)
	return ""
}

// requireGone fails unless parent is absent from every hierarchy.
func requireGone(t *testing.T, h Host, parent string) {
	t.Helper()
	for _, root := range hierarchyRoots(h) {
		if _, err := os.Stat(filepath.Join(root, parent)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: still there after Destroy (stat: %v)", filepath.Join(root, parent), err)
		}
	}
}

// waitClosed fails unless ch is closed (after any pending sends) in time.
func waitClosed(t *testing.T, ch <-chan struct{}, why string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatalf("OOM event channel still open 10s after %s", why)
		}
	}
}

func TestLifecycle(t *testing.T) {
	eachDriver(t, "", func(t *testing.T, h Host, rd realDriver, parent string) {
		path := parent + "/demo/web"
		cg, err := rd.d.Create(path, Resources{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rd.d.Create(path, Resources{}); err != nil {
			t.Fatalf("second Create of the same cgroup: %v", err)
		}
		if cg.Path() != path {
			t.Errorf("Path() = %q, want %q", cg.Path(), path)
		}
		if pids, err := cg.Procs(); err != nil || len(pids) != 0 {
			t.Fatalf("Procs of a new cgroup = %v, %v; want none", pids, err)
		}

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		events, err := cg.OOMEvents(ctx)
		if err != nil {
			t.Fatal(err)
		}

		ch := startHelper(t, "block", nil)
		pid := ch.cmd.Process.Pid
		if err := cg.AddProc(pid); err != nil {
			t.Fatal(err)
		}
		ch.release(t)
		ch.readUntil(t, "ready")
		if got := cgroupOf(t, pid, rd.d.Version()); got != "/"+path {
			t.Errorf("/proc/%d/cgroup says %q, want %q", pid, got, "/"+path)
		}
		if pids, err := cg.Procs(); err != nil || !slices.Equal(pids, []int{pid}) {
			t.Errorf("Procs = %v, %v; want [%d]", pids, err, pid)
		}
		st, err := cg.Stats()
		if err != nil || !slices.Equal(st.Pids, []int{pid}) {
			t.Errorf("Stats = %+v, %v; want pids [%d]", st, err, pid)
		}
		// The helper touched 4 MiB after it moved in.
		if rd.limits["memory"] && (st.MemoryUsage < 4<<20 || st.MemoryPeak < st.MemoryUsage) {
			t.Errorf("Stats = %+v: want at least 4 MiB used, and a peak no lower", st)
		}
		if n, err := cg.OOMKills(); err != nil || n != 0 {
			t.Errorf("OOMKills = %d, %v; want 0", n, err)
		}

		if err := cg.Kill(); err != nil {
			t.Fatal(err)
		}
		if pids, err := cg.Procs(); err != nil || len(pids) != 0 {
			t.Errorf("Procs after Kill = %v, %v; want none", pids, err)
		}
		err = ch.cmd.Wait()
		if ws, ok := ch.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Errorf("helper ended with %v, want killed by SIGKILL", err)
		}
		cancel()
		waitClosed(t, events, "its context ended")

		if err := rd.d.Load(parent).Destroy(); err != nil {
			t.Fatal(err)
		}
		requireGone(t, h, parent)
		if err := rd.d.Load(parent).Destroy(); err != nil {
			t.Errorf("Destroy of a missing cgroup: %v", err)
		}
		if err := rd.d.Load(parent).Kill(); err != nil {
			t.Errorf("Kill of a missing cgroup: %v", err)
		}
	})
}

// TestEventsEndWithRemoval: removing the cgroup closes the channel even
// though its context is still live.
func TestEventsEndWithRemoval(t *testing.T) {
	eachDriver(t, "", func(t *testing.T, h Host, rd realDriver, parent string) {
		if rd.d.Version() == 1 && !rd.limits["memory"] {
			t.Skip("v1 OOM events need the memory controller, which this host does not mount")
		}
		cg, err := rd.d.Create(parent+"/x", Resources{})
		if err != nil {
			t.Fatal(err)
		}
		events, err := cg.OOMEvents(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := rd.d.Load(parent).Destroy(); err != nil {
			t.Fatal(err)
		}
		waitClosed(t, events, "the cgroup was removed")
	})
}

func TestMemoryLimitChanges(t *testing.T) {
	eachDriver(t, "memory", func(t *testing.T, h Host, rd realDriver, parent string) {
		cg, err := rd.d.Create(parent+"/m", Resources{Memory: 64 << 20})
		if err != nil {
			t.Fatal(err)
		}
		// Lowering then raising a live limit exercises both write
		// orders of v1's limit and memsw, which the kernel checks.
		for _, limit := range []int64{32 << 20, 128 << 20, 0} {
			if err := cg.Set(Resources{Memory: limit}); err != nil {
				t.Fatalf("Set memory %d: %v", limit, err)
			}
			st, err := cg.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if st.MemoryLimit != limit {
				t.Errorf("after Set %d: Stats.MemoryLimit = %d", limit, st.MemoryLimit)
			}
			if rd.d.Version() == 1 {
				sw, err := readInt(filepath.Join(rd.root, cg.Path(), "memory.memsw.limit_in_bytes"))
				if err != nil {
					t.Fatal(err)
				}
				if sw >= unlimited {
					sw = 0
				}
				if sw != limit {
					t.Errorf("after Set %d: memsw limit = %d, want the same", limit, sw)
				}
			}
		}
	})
}

// TestDestroyBusy: a cgroup with a process in it cannot be removed; Destroy
// retries for its bounded time, then says so, and succeeds once Kill has
// emptied it.
func TestDestroyBusy(t *testing.T) {
	eachDriver(t, "", func(t *testing.T, h Host, rd realDriver, parent string) {
		cg, err := rd.d.Create(parent+"/busy", Resources{})
		if err != nil {
			t.Fatal(err)
		}
		ch := startHelper(t, "block", nil)
		if err := cg.AddProc(ch.cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
		setWait := func(b linux.Backoff) {
			switch c := cg.(type) {
			case *v1Cgroup:
				c.wait = b
			case *v2Cgroup:
				c.wait = b
			}
		}
		// A short wait for the Destroy that must fail; Kill then gets the
		// usual one, since on a busy machine the kernel may take longer
		// than the short one to empty the cgroup.
		setWait(linux.Backoff{First: time.Millisecond, Max: 10 * time.Millisecond, Total: 100 * time.Millisecond})
		err = cg.Destroy()
		if !errors.Is(err, unix.EBUSY) {
			t.Fatalf("Destroy of a cgroup in use: %v, want EBUSY", err)
		}
		t.Logf("Destroy of a cgroup in use: %v", err)
		setWait(defaultBackoff())
		if err := cg.Kill(); err != nil {
			t.Fatal(err)
		}
		ch.cmd.Wait()
		if err := cg.Destroy(); err != nil {
			t.Fatalf("Destroy after Kill: %v", err)
		}
	})
}

// TestPrune: Prune removes an empty cgroup, and leaves without error one
// still in use, by another cgroup or by a process, and its ancestors.
func TestPrune(t *testing.T) {
	eachDriver(t, "", func(t *testing.T, h Host, rd realDriver, parent string) {
		if _, err := rd.d.Create(parent+"/one/web", Resources{}); err != nil {
			t.Fatal(err)
		}
		b, err := rd.d.Create(parent+"/two/db", Resources{})
		if err != nil {
			t.Fatal(err)
		}
		ch := startHelper(t, "block", nil)
		if err := b.AddProc(ch.cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
		exists := func(p string) bool {
			_, err := os.Stat(filepath.Join(rd.root, p))
			return err == nil
		}
		for _, busy := range []string{parent + "/two/db", parent + "/one"} {
			if err := rd.d.Prune(busy); err != nil {
				t.Fatalf("Prune of %s, in use: %v, want nil", busy, err)
			}
			if !exists(busy) {
				t.Fatalf("Prune removed %s, which is in use", busy)
			}
		}
		if err := rd.d.Prune(parent + "/one/web"); err != nil {
			t.Fatal(err)
		}
		if exists(parent+"/one/web") || !exists(parent+"/one") {
			t.Fatalf("after pruning %s/one/web: it exists %v, its empty parent exists %v; want false, true",
				parent, exists(parent+"/one/web"), exists(parent+"/one"))
		}
		if err := b.Kill(); err != nil {
			t.Fatal(err)
		}
		ch.cmd.Wait()
		for _, p := range []string{"/two/db", "/two", "/one", ""} {
			if err := rd.d.Prune(parent + p); err != nil {
				t.Fatal(err)
			}
		}
		requireGone(t, h, parent)
	})
}

// destroy removes a test's parent cgroup, failing the test if it cannot.
func destroy(t *testing.T, d Driver, parent string) {
	t.Helper()
	if err := d.Load(parent).Destroy(); err != nil {
		t.Error(err)
	}
}

// TestOOMKill puts a child that allocates 100 MiB in a cgroup limited to
// 20 MiB: the kernel must kill it, the count must rise by exactly one, and
// an event must arrive. It repeats 20 times (once with -short) and logs the
// median delays, measured from the moment the child is told to allocate.
func TestOOMKill(t *testing.T) {
	eachDriver(t, "memory", func(t *testing.T, h Host, rd realDriver, parent string) {
		cg, err := rd.d.Create(parent+"/oom", Resources{Memory: 20 << 20})
		if err != nil {
			t.Fatal(err)
		}
		rounds := 20
		if testing.Short() {
			rounds = 1
		}
		var toEvent, toExit []time.Duration
		for i := range rounds {
			ev, ex := oomRound(t, cg)
			t.Logf("round %d: event after %v, exit seen after %v", i, ev, ex)
			toEvent, toExit = append(toEvent, ev), append(toExit, ex)
		}
		t.Logf("%s OOM over %d rounds: median delay to the event %v, to the child's exit %v",
			rd.name, rounds, median(toEvent), median(toExit))
	})
}

func oomRound(t *testing.T, cg Cgroup) (toEvent, toExit time.Duration) {
	t.Helper()
	before, err := cg.OOMKills()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := cg.OOMEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ch := startHelper(t, "alloc 100", nil)
	if err := cg.AddProc(ch.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	start := time.Now()
	ch.release(t)
	go func() { exited <- ch.cmd.Wait() }()
	select {
	case _, ok := <-events:
		if !ok {
			err := <-exited
			after, kerr := cg.OOMKills()
			t.Fatalf("OOM event channel closed without an event; the child ended with %v (output %q); OOMKills %d -> %d (%v)",
				err, ch.stderr.String(), before, after, kerr)
		}
		toEvent = time.Since(start)
	case <-time.After(30 * time.Second):
		t.Fatal("no OOM event within 30s")
	}
	err = <-exited
	toExit = time.Since(start)
	if ws, ok := ch.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v (output %q), want killed by SIGKILL", err, ch.stderr.String())
	}
	after, err := cg.OOMKills()
	if err != nil {
		t.Fatal(err)
	}
	if after != before+1 {
		t.Fatalf("OOMKills went from %d to %d, want +1", before, after)
	}
	cancel()
	waitClosed(t, events, "its context ended")
	return toEvent, toExit
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestKillFiftyProcesses fills a cgroup with 50 busybox sleeps, forked by a
// shell until pids.max stops it where the driver has a pids controller,
// then empties it with Kill and logs how long that took.
func TestKillFiftyProcesses(t *testing.T) {
	testenv.RequireRoot(t)
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Fatalf("needs /bin/busybox (busybox-static): %v", err)
	}
	// The shell exits when the fork loop ends (or fails at the limit); its
	// sleeps must come to us, not to the host's init, so that we reap them.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("become a subreaper: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0); err != nil {
			t.Errorf("stop being a subreaper: %v", err)
		}
	})
	eachDriver(t, "", func(t *testing.T, h Host, rd realDriver, parent string) {
		// With pids.max 51 the shell and 50 sleeps fill the cgroup, the
		// 51st fork fails and the shell gives up.
		r := Resources{}
		if rd.limits["pids"] {
			r = Resources{Pids: 51}
		}
		cg, err := rd.d.Create(parent+"/fifty", r)
		if err != nil {
			t.Fatal(err)
		}
		killFifty(t, rd.name+" Kill", cg.Kill, fillFifty(t, cg, r.Pids > 0))
		if v2, ok := cg.(*v2Cgroup); ok {
			// A restart clones its next run into the cgroup that Kill
			// emptied: it must live (see v2Cgroup.Kill).
			bornAlive(t, v2)
			// Once more, the way of a cgroup about to be removed.
			killFifty(t, rd.name+" cgroup.kill", v2.killForRemoval, fillFifty(t, cg, false))
		}
	})
}

// bornAlive clones a child into cg (CLONE_INTO_CGROUP) and checks that it
// runs to its own exit.
func bornAlive(t *testing.T, cg Cgroup) {
	t.Helper()
	fd, err := cg.OpenFD()
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	cmd := exec.Command("/bin/busybox", "sh", "-c", "exit 7")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(fd.Fd())}
	var exit *exec.ExitError
	if err := cmd.Run(); !errors.As(err, &exit) || exit.ExitCode() != 7 {
		t.Errorf("a child cloned into %s after its Kill: %v, want exit status 7", cg.Path(), err)
	}
}

// fillFifty runs a busybox shell in cg that forks sleeps in a loop, 60
// times when bounded (pids.max stops it at 50) and 50 otherwise, and
// returns the pids of the sleeps once the shell has exited.
func fillFifty(t *testing.T, cg Cgroup, bounded bool) []int {
	t.Helper()
	loop := "50"
	if bounded {
		loop = "60"
	}
	sh := exec.Command("/bin/busybox", "sh", "-c", "read go; for i in $(seq "+loop+"); do sleep 1000 & done")
	stdin, err := sh.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	if err := cg.AddProc(sh.Process.Pid); err != nil {
		sh.Process.Kill()
		sh.Wait()
		t.Fatal(err)
	}
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	shErr := sh.Wait()
	pids, err := cg.Procs()
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) != 50 {
		t.Errorf("cgroup holds %d processes after the fork loop (shell: %v), want 50", len(pids), shErr)
	}
	if bounded && shErr == nil {
		t.Errorf("the shell forked %s sleeps under pids.max 51 without failing", loop)
	}
	return pids
}

// killFifty empties the cgroup of pids with kill, logs how long it took, and
// reaps them: they are our children, and until reaped they are zombies that
// still count against pids.max, so that the next fillFifty could not fork.
func killFifty(t *testing.T, how string, kill func() error, pids []int) {
	t.Helper()
	defer reap(t, pids)
	start := time.Now()
	if err := kill(); err != nil {
		// Not left for reap to wait a thousand seconds for.
		for _, pid := range pids {
			unix.Kill(pid, unix.SIGKILL)
		}
		t.Fatal(err)
	}
	t.Logf("%s emptied a cgroup of %d processes in %v", how, len(pids), time.Since(start))
	for _, pid := range pids {
		if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
			// Killed but not yet reaped is a zombie; anything else lives.
			if st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); !strings.Contains(string(st), ") Z ") {
				t.Errorf("pid %d still alive after %s", pid, how)
			}
		}
	}
}

// reap waits for each of pids, which became our children when their shell
// exited, so that none is left a zombie.
func reap(t *testing.T, pids []int) {
	for _, pid := range pids {
		var ws unix.WaitStatus
		_, err := unix.Wait4(pid, &ws, 0, nil)
		switch {
		case errors.Is(err, unix.ECHILD):
		case err != nil:
			t.Errorf("reap %d: %v", pid, err)
		case ws.Signal() != unix.SIGKILL:
			t.Errorf("pid %d ended with status %#x, want killed by SIGKILL", pid, ws)
		}
	}
}

// TestCloneIntoCgroup starts a child inside a v2 cgroup with
// CLONE_INTO_CGROUP, so it never runs anywhere else.
func TestCloneIntoCgroup(t *testing.T) {
	h := hostFor(t)
	if h.V2 == "" {
		t.Skipf("host has no cgroup2 hierarchy (%v)", h)
	}
	d := NewV2(h.V2)
	parent := testParent(t, h)
	defer destroy(t, d, parent)
	cg, err := d.Create(parent+"/born", Resources{})
	if err != nil {
		t.Fatal(err)
	}
	fd, err := cg.OpenFD()
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	ch := startHelper(t, "block", func(cmd *exec.Cmd) {
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(fd.Fd())}
	})
	ch.release(t)
	lines := ch.readUntil(t, "ready")
	if err := ch.stdin.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ch.cmd.Wait(); err != nil {
		t.Fatalf("helper: %v (%s)", err, ch.stderr)
	}
	// Nothing moved the child: it was born there.
	want := "0::/" + parent + "/born"
	if !slices.Contains(lines, want) {
		t.Errorf("child saw its cgroups as %q, want a line %q", lines, want)
	}
	if _, err := NewV1(nil).Load("x").OpenFD(); !errors.Is(err, ErrNoCgroupFD) {
		t.Errorf("v1 OpenFD: %v, want ErrNoCgroupFD", err)
	}
}

// TestThreadJoinsByItself: a thread that writes "0" to each of the files
// OpenTaskFiles opened is in the cgroup in every v1 hierarchy, and the
// rest of its process is not moved with it.
func TestThreadJoinsByItself(t *testing.T) {
	h := hostFor(t)
	if len(h.V1) == 0 {
		t.Skipf("host has no cgroup v1 hierarchy (%v)", h)
	}
	d := NewV1(h.V1)
	parent := testParent(t, h)
	defer destroy(t, d, parent)
	cg, err := d.Create(parent+"/joined", Resources{Memory: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	files, err := cg.(*v1Cgroup).OpenTaskFiles()
	if err != nil {
		t.Fatal(err)
	}
	if want := len(cg.(*v1Cgroup).uniqueDirs()); len(files) != want {
		t.Errorf("OpenTaskFiles opened %d files, want one per hierarchy: %d", len(files), want)
	}
	// The thread leaves again before it is unlocked: this process's other
	// goroutines may run on it after that, and the deferred destroy would
	// kill a process with a thread in the cgroup.
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	home := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(own)), "\n") {
		if parts := strings.SplitN(line, ":", 3); len(parts) == 3 {
			if root := h.V1[strings.Split(parts[1], ",")[0]]; root != "" {
				home[root] = filepath.Join(root, parts[2], "tasks")
			}
		}
	}
	seen := make(chan string, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var report strings.Builder
		for _, f := range files {
			if _, err := f.WriteString("0"); err != nil {
				report.WriteString(err.Error())
			}
			f.Close()
		}
		b, err := os.ReadFile("/proc/thread-self/cgroup")
		report.Write(b)
		for _, tasks := range home {
			if err := os.WriteFile(tasks, []byte("0"), 0); err != nil {
				report.WriteString("leave: " + err.Error())
			}
		}
		if err != nil {
			report.WriteString(err.Error())
		}
		seen <- report.String()
	}()
	thread := <-seen
	for _, line := range strings.Split(strings.TrimSpace(thread), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && cg.(*v1Cgroup).dirs[strings.Split(parts[1], ",")[0]] != "" && !strings.HasSuffix(parts[2], "/"+parent+"/joined") {
			t.Errorf("the joining thread is outside the cgroup: %q (all: %q)", line, thread)
		}
	}
	if got := cgroupOf(t, os.Getpid(), 1); strings.HasSuffix(got, "/joined") {
		t.Errorf("the process's main thread moved with the joining thread: %s", got)
	}
}
