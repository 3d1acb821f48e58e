package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stack-containers/stack/internal/testenv"
)

// buildStack builds the stack binary under test into the test's directory.
func buildStack(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "stack")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/stack-containers/stack/cmd/stack")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build stack: %v\n%s", err, out)
	}
	return bin
}

// The harness drives stack the way the benchmarks do: detached and
// foreground starts, teardown and the log check all work against the real
// binary, and nothing of the run is left behind.
func TestStackThroughTheHarness(t *testing.T) {
	w := newTestWatcher(t)
	rootfs := testenv.NewBusyboxRootfs(t)
	id := testCgroups(t)
	dir := t.TempDir()
	st, err := newStackTool(buildStack(t), filepath.Join(dir, "stack"), rootfs, id+"/stack", id)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h := &harness{cfg: config{rounds: 1}, rootfs: rootfs, watcher: w, stack: st}

	for _, sys := range []system{stackDetached{st}, &stackForeground{stackTool: st, running: map[string]*exec.Cmd{}}} {
		b := h.newBatch(2, sleepArgv())
		if _, _, err := measureStart(ctx, w, sys, b, time.Minute); err != nil {
			t.Fatalf("%s: start and down: %v", sys.name(), err)
		}
		if _, err := measureRun(ctx, sys, h.newBatch(2, []string{"/bin/true"}), time.Minute); err != nil {
			t.Fatalf("%s: run to the end: %v", sys.name(), err)
		}
	}

	lines, err := writeLogData(filepath.Join(rootfs, "data", "lines"), 2000*logLineLen)
	if err != nil {
		t.Fatal(err)
	}
	if _, verdict, err := h.stackLogs(ctx, 2, lines); err != nil || verdict != allLines {
		t.Fatalf("logs: %q, %v", verdict, err)
	}

	if mounts, err := mountsUnder(dir); err != nil || len(mounts) > 0 {
		t.Fatalf("mounts left: %v %v", mounts, err)
	}
}
