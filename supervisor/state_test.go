package supervisor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLockIsExclusiveAndSurvivesRemoval(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	first, err := tryLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tryLock(dir); !errors.Is(err, errLocked) {
		t.Fatalf("second lock: %v, want errLocked", err)
	}
	// A waiter gets the lock once the holder removes the file and lets go,
	// and holds it on a file that the path names again.
	got := make(chan *stackLock)
	go func() {
		l, err := waitLock(context.Background(), dir)
		if err != nil {
			t.Error(err)
		}
		got <- l
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
	if _, err := tryLock(dir); !errors.Is(err, errLocked) {
		t.Errorf("lock after handover: %v, want errLocked", err)
	}
	if err := second.release(); err != nil {
		t.Fatal(err)
	}
}

func TestWaitLockGivesUpWithContext(t *testing.T) {
	dir := t.TempDir()
	l, err := tryLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.release()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := waitLock(ctx, dir); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waitLock = %v, want deadline exceeded", err)
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
	if err := writeState(p, want); err != nil {
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
