package cgroup

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
	"github.com/stack-containers/stack/internal/testenv"
)

// The killAll tests stand in for the kernel's cgroup.procs with a list of
// their own, so they need neither root nor a cgroup.

// running reports whether pid is alive and not a zombie: what cgroup.procs
// would still list.
func running(pid int) bool {
	st, err := linux.ReadStat(pid)
	return err == nil && st.State != 'Z'
}

// TestKillAllWaitsForTheExit: killAll signals what procs lists, then
// waits for the exit on the pidfd before it reads the list again, so that
// the read after the signal finds the process gone. A kill that went
// straight back to the list would find the process still dying (and
// pause, and read again) in nearly every round, and five rounds make it
// fail all but certainly.
func TestKillAllWaitsForTheExit(t *testing.T) {
	for range 5 {
		cmd := testenv.StartSleep(t)
		pid := cmd.Process.Pid
		var found []bool
		procs := func() ([]int, error) {
			alive := running(pid)
			found = append(found, alive)
			if alive {
				return []int{pid}, nil
			}
			return nil, nil
		}
		if err := killAll("fake", procs, nil, nil, defaultBackoff()); err != nil {
			t.Fatal(err)
		}
		// Listed by the emptiness check and by the check after the pidfd
		// was opened (there is no freezer), gone after the signal.
		if want := []bool{true, true, false}; !slices.Equal(found, want) {
			t.Fatalf("the reads of procs found the process running: %v, want %v", found, want)
		}
		var exit *exec.ExitError
		if err := cmd.Wait(); !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("the child ended with %v, want killed by SIGKILL", err)
		}
	}
}

// TestKillAllSparesAPidThatLeft: without a freezer a pid is signalled only
// if the list read after its pidfd was opened still holds it; one that
// left in between may already name a process elsewhere.
func TestKillAllSparesAPidThatLeft(t *testing.T) {
	stranger := testenv.StartSleep(t)
	// Listed by the emptiness check, which is the round's list without a
	// freezer, before the pidfds are opened; gone from every read after.
	calls := 0
	procs := func() ([]int, error) {
		calls++
		if calls <= 1 {
			return []int{stranger.Process.Pid}, nil
		}
		return nil, nil
	}
	if err := killAll("fake", procs, nil, nil, defaultBackoff()); err != nil {
		t.Fatal(err)
	}
	if !running(stranger.Process.Pid) {
		t.Error("killAll killed a process its second list no longer named")
	}
}

// TestKillAllFreezesAroundTheSignals: with a freezer, each round lists and
// signals between freeze and thaw.
func TestKillAllFreezesAroundTheSignals(t *testing.T) {
	cmd := testenv.StartSleep(t)
	pid := cmd.Process.Pid
	var (
		mu     sync.Mutex
		log    []string
		frozen bool
	)
	procs := func() ([]int, error) {
		mu.Lock()
		defer mu.Unlock()
		if !running(pid) {
			log = append(log, "empty")
			return nil, nil
		}
		log = append(log, "list frozen="+map[bool]string{true: "yes", false: "no"}[frozen])
		return []int{pid}, nil
	}
	set := func(v bool) func() error {
		return func() error {
			mu.Lock()
			defer mu.Unlock()
			frozen = v
			log = append(log, map[bool]string{true: "freeze", false: "thaw"}[v])
			return nil
		}
	}
	if err := killAll("fake", procs, set(true), set(false), defaultBackoff()); err != nil {
		t.Fatal(err)
	}
	want := []string{"list frozen=no", "freeze", "list frozen=yes", "thaw", "empty"}
	if !slices.Equal(log, want) {
		t.Errorf("killAll did %q, want %q", log, want)
	}
}

// TestKillAllGivesUp: a process that procs keeps listing (here one that
// does not exist, as a kernel that never drops it would) ends the kill with
// an error after the backoff's total.
func TestKillAllGivesUp(t *testing.T) {
	cmd := testenv.StartSleep(t)
	pid := cmd.Process.Pid
	cmd.Process.Kill()
	cmd.Wait()
	procs := func() ([]int, error) { return []int{pid}, nil }
	err := killAll("fake", procs, nil, nil, linux.Backoff{First: time.Millisecond, Max: time.Millisecond, Total: 20 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "processes remain") {
		t.Errorf("killAll of a cgroup that never empties: %v, want processes remain", err)
	}
}

// TestIsLeafCountsSubdirectories: a directory's link count tells whether
// it has subdirectories, on the test's filesystem as on cgroupfs.
func TestIsLeafCountsSubdirectories(t *testing.T) {
	root := t.TempDir()
	fakeFiles(t, filepath.Join(root, "leaf"), map[string]string{"cgroup.procs": "1\n"})
	if err := os.MkdirAll(filepath.Join(root, "parent", "child"), 0o755); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(root, &st); err != nil || st.Nlink < 2 {
		t.Skipf("%s does not count subdirectories in a directory's links (nlink %d)", root, st.Nlink)
	}
	for dir, want := range map[string]bool{"leaf": true, "parent": false, "parent/child": true} {
		got, err := isLeaf(filepath.Join(root, dir))
		if err != nil || got != want {
			t.Errorf("isLeaf(%s) = %v, %v; want %v", dir, got, err, want)
		}
	}
	if _, err := isLeaf(filepath.Join(root, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("isLeaf of a missing directory: %v, want ErrNotExist", err)
	}
}

// TestTreeProcsLeafAndTree: a leaf's processes come from its own
// cgroup.procs, a parent's from the whole tree, sorted and each once.
func TestTreeProcsLeafAndTree(t *testing.T) {
	root := t.TempDir()
	fakeFiles(t, filepath.Join(root, "p"), map[string]string{"cgroup.procs": "7\n3\n"})
	got, err := treeProcs(filepath.Join(root, "p"))
	if err != nil || !slices.Equal(got, []int{3, 7}) {
		t.Errorf("treeProcs of a leaf = %v, %v; want [3 7]", got, err)
	}
	fakeFiles(t, filepath.Join(root, "p", "a"), map[string]string{"cgroup.procs": "5\n7\n"})
	fakeFiles(t, filepath.Join(root, "p", "a", "b"), map[string]string{"cgroup.procs": "1\n"})
	got, err = treeProcs(filepath.Join(root, "p"))
	if err != nil || !slices.Equal(got, []int{1, 3, 5, 7}) {
		t.Errorf("treeProcs of a tree = %v, %v; want [1 3 5 7]", got, err)
	}
}

// TestV2WaitEventWakesOnChange: the wait reads cgroup.events again when it
// changes, and fails naming the key once its time is up.
func TestV2WaitEventWakesOnChange(t *testing.T) {
	d, root := fakeV2(t, "x", "", "")
	events := filepath.Join(root, "x", "cgroup.events")
	fakeFiles(t, filepath.Dir(events), map[string]string{"cgroup.events": "populated 1\nfrozen 0\n"})
	c := d.Load("x").(*v2Cgroup)
	// The wait's first read shows as an IN_ACCESS of the file: changed
	// only after it, the file is one the wait must come back to.
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	notices := os.NewFile(uintptr(fd), "inotify")
	defer notices.Close()
	if _, err := unix.InotifyAddWatch(fd, events, unix.IN_ACCESS); err != nil {
		t.Fatal(err)
	}
	accessed := make(chan error, 1)
	go func() {
		_, err := notices.Read(make([]byte, 4096))
		accessed <- err
	}()
	done := make(chan error, 1)
	go func() { done <- c.waitEvent("populated", 0) }()
	select {
	case err := <-accessed:
		if err != nil {
			t.Fatalf("read inotify: %v", err)
		}
	case err := <-done:
		t.Fatalf("waitEvent returned %v without reading %s", err, events)
	}
	// Written in place, as the kernel changes it: a truncating write could
	// be read half-way.
	f, err := os.OpenFile(events, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("populated 0\n"), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := <-done; err != nil {
		t.Fatalf("waitEvent: %v", err)
	}
	c.wait = linux.Backoff{First: time.Millisecond, Max: time.Millisecond, Total: 20 * time.Millisecond}
	if err := c.waitEvent("frozen", 1); err == nil || !strings.Contains(err.Error(), `"frozen" stays 0`) {
		t.Errorf("waitEvent for a value that never comes: %v, want an error saying frozen stays 0", err)
	}
}
