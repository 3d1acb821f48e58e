package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stack-containers/stack/manifest"
)

func TestLockIsExclusiveAndSurvivesRemoval(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	first, err := tryLock(dir, roleSupervisor)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tryLock(dir, roleSupervisor); !errors.Is(err, errLocked) {
		t.Fatalf("second lock: %v, want errLocked", err)
	}
	// A waiter gets the lock once the holder removes the file and lets go,
	// and holds it on a file that the path names again.
	got := make(chan *stackLock)
	go func() {
		for {
			l, err := tryLock(dir, roleSupervisor)
			if !errors.Is(err, errLocked) {
				if err != nil {
					t.Error(err)
				}
				got <- l
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	if err := first.removeAndRelease(); err != nil {
		t.Fatal(err)
	}
	second := <-got
	if second == nil {
		t.FailNow()
	}
	if !samePath(second.f, filepath.Join(dir, "lock")) {
		t.Error("the lock was taken on an unlinked file")
	}
	if _, err := tryLock(dir, roleSupervisor); !errors.Is(err, errLocked) {
		t.Errorf("lock after handover: %v, want errLocked", err)
	}
	if err := second.release(); err != nil {
		t.Fatal(err)
	}
}

func TestStopHolderWaitsForADownUntilContextEnds(t *testing.T) {
	p, err := PathsOf(t.TempDir(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	l, err := tryLock(p.Dir, roleDown)
	if err != nil {
		t.Fatal(err)
	}
	defer l.release()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := stopHolder(ctx, p); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stopHolder = %v, want deadline exceeded", err)
	}
}

// TestStopHolderStopsTheRecordedSupervisor is a down that comes while an
// up holds the lock and clears an earlier run: the state names that run's
// supervisor, which is dead, and only the lock file names the live one.
// Down must stop the live one rather than wait for the lock without end.
func TestStopHolderStopsTheRecordedSupervisor(t *testing.T) {
	p, err := PathsOf(t.TempDir(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	dead := exec.Command("true")
	if err := dead.Start(); err != nil {
		t.Fatal(err)
	}
	deadProc, err := processOf(dead.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	dead.Wait()
	old := &State{Stack: "demo", Supervisor: deadProc,
		Containers: []ContainerState{{Name: "web", State: StateRunning, StopTimeout: time.Hour}}}
	b, err := encodeState(old)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeStateFile(p, b); err != nil {
		t.Fatal(err)
	}

	// The live holder: the lock is this test's, the process it names a
	// child that lets go of it (through the test) when it is signalled.
	l, err := tryLock(p.Dir, roleSupervisor)
	if err != nil {
		t.Fatal(err)
	}
	holder := exec.Command("sleep", "1000")
	if err := holder.Start(); err != nil {
		l.release()
		t.Fatal(err)
	}
	ended := make(chan *os.ProcessState, 1)
	t.Cleanup(func() { holder.Process.Kill(); <-ended })
	hp, err := processOf(holder.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := json.Marshal(lockHolder{Process: hp, Role: roleSupervisor})
	if err := os.WriteFile(filepath.Join(p.Dir, lockFile), rec, 0o600); err != nil {
		t.Fatal(err)
	}
	go func() {
		holder.Wait()
		l.release()
		ended <- holder.ProcessState
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, err := stopHolder(ctx, p)
	if err != nil {
		t.Fatalf("stopHolder: %v (the live holder was never stopped)", err)
	}
	defer got.release()
	ps := <-ended
	ended <- ps
	if ps.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Errorf("the holder ended with %v, want SIGTERM", ps)
	}
}

func TestStateRoundTripAndAtomicWrite(t *testing.T) {
	p, err := PathsOf(t.TempDir(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReadState(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadState of nothing: %v, want not exist", err)
	}
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	code := 137
	want := &State{Stack: "demo", Cgroup: "stack/demo", Containers: []ContainerState{
		{Name: "web", State: StateExited, ExitCode: &code, Restarts: 2, OOMKills: 3, After: []string{"db"}},
	}}
	b, err := encodeState(want)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeStateFile(p, b); err != nil {
		t.Fatal(err)
	}
	got, err := ReadState(p)
	if err != nil {
		t.Fatal(err)
	}
	c := got.Container("web")
	if c == nil || *c.ExitCode != 137 || c.Restarts != 2 || c.OOMKills != 3 || c.After[0] != "db" {
		t.Errorf("read back %+v", got)
	}
	entries, err := os.ReadDir(p.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "state.json" {
		t.Errorf("state directory holds %v, want only state.json", entries)
	}
}

func TestPathsRefuseEscapingNames(t *testing.T) {
	for _, name := range []string{"", "..", "../x", "a/b", ".cache", "-x", "A"} {
		if _, err := PathsOf("/run/stack", name); err == nil {
			t.Errorf("PathsOf(%q) accepted", name)
		}
	}
	if _, err := PathsOf("/run/stack", "demo-1_x"); err != nil {
		t.Error(err)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 1023: "1023B", 1024: "1.0KiB", 2000000: "1.9MiB", 64 << 20: "64.0MiB", 3 << 30: "3.0GiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// newTestStateWriter is the writer of a state of n containers, its first
// state written, as Start leaves it before anything is created.
func newTestStateWriter(t *testing.T, n int) *stateWriter {
	t.Helper()
	p, err := PathsOf(t.TempDir(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	st := State{Stack: "demo", Cgroup: "stack/demo"}
	for i := range n {
		st.Containers = append(st.Containers, ContainerState{Name: fmt.Sprintf("c%d", i), State: StateCreated})
	}
	w := newStateWriter(p, st, func(err error) { t.Errorf("state writer: %v", err) })
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	return w
}

// requireFileHoldsState fails unless the state file holds exactly the
// writer's state in memory.
func requireFileHoldsState(t *testing.T, w *stateWriter) {
	t.Helper()
	got, err := os.ReadFile(w.paths.State())
	if err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	want, err := encodeState(&w.state)
	w.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("state file holds\n%s\nwant\n%s", got, want)
	}
}

func TestStateWritesCoalesce(t *testing.T) {
	const n = 200
	w := newTestStateWriter(t, n)
	defer w.close()
	// Hold the file as a write in flight does: the updates must neither
	// wait for it nor each cost a write of their own.
	w.writeMu.Lock()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			w.update(fmt.Sprintf("c%d", i), func(cs *ContainerState) {
				cs.State = StateRunning
				cs.Process = Process{Pid: 1000 + i}
			})
		})
	}
	wg.Wait()
	w.writeMu.Unlock()
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	w.writeMu.Lock()
	writes := w.writes
	w.writeMu.Unlock()
	t.Logf("%d updates, %d writes (one of them the first state)", n, writes)
	if writes > 3 {
		t.Errorf("%d updates cost %d writes, want the first write and at most two more", n, writes)
	}
	requireFileHoldsState(t, w)

	// The writer alone, without a flush, brings the file up to date.
	w.update("c0", func(cs *ContainerState) { cs.State = StateExited })
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := ReadState(w.paths)
		if err != nil {
			t.Fatal(err)
		}
		if st.Container("c0").State == StateExited {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer did not write the last change")
		}
		time.Sleep(10 * time.Millisecond)
	}
	requireFileHoldsState(t, w)
}

func TestStateWriterCloseThenFlush(t *testing.T) {
	w := newTestStateWriter(t, 2)
	// A change the writer has not written yet when it is closed is taken
	// by the last flush, and nothing is written after it.
	w.update("c1", func(cs *ContainerState) { cs.State = StateStopped })
	w.close()
	w.change(func(st *State) { st.Ended = true })
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	st, err := ReadState(w.paths)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Ended || st.Container("c1").State != StateStopped {
		t.Errorf("state after close and flush: ended %v, c1 %s; want ended, stopped", st.Ended, st.Container("c1").State)
	}
	requireFileHoldsState(t, w)
}

// newStateSupervisor is a supervisor of n containers that exist only in
// its state, with its state writer running and its lock taken, as Start
// leaves them before anything is created.
func newStateSupervisor(t *testing.T, n int) *Supervisor {
	t.Helper()
	w := newTestStateWriter(t, n)
	lock, err := tryLock(w.paths.Dir, roleSupervisor)
	if err != nil {
		t.Fatal(err)
	}
	g, err := stackGraph(&manifest.Stack{Name: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	return &Supervisor{paths: w.paths, graph: g, lock: lock, state: w, cfg: Config{Errors: &bytes.Buffer{}}}
}

func TestStateEndedAfterRelease(t *testing.T) {
	s := newStateSupervisor(t, 3)
	// Changes the writer has not written yet when the stack ends.
	for _, name := range []string{"c0", "c1", "c2"} {
		s.state.update(name, func(cs *ContainerState) { cs.State = StateStopped })
	}
	if err := s.release(false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.state.done:
	default:
		t.Fatal("the writer outlived release")
	}
	st, err := ReadState(s.paths)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Ended {
		t.Error("state after release is not marked ended")
	}
	for _, c := range st.Containers {
		if c.State != StateStopped {
			t.Errorf("container %s is %s after release, want %s", c.Name, c.State, StateStopped)
		}
	}
	requireFileHoldsState(t, s.state)
	entries, err := os.ReadDir(s.paths.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "state.json" && e.Name() != lockFile {
			t.Errorf("state directory holds %s after release", e.Name())
		}
	}
	l, err := tryLock(s.paths.Dir, roleSupervisor)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	if err := l.release(); err != nil {
		t.Fatal(err)
	}
}
