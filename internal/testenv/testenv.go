// Package testenv holds what stack's tests need from the machine they run
// on: root, a busybox root filesystem, and a count of the test process's
// open files. In CI (CI is set) a missing
// requirement fails the test instead of skipping it, so that no test
// silently stops running there.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stack-containers/stack/internal/busybox"
)

// inCI reports whether the tests run in CI, where nothing may be skipped.
func inCI() bool { return os.Getenv("CI") != "" }

// SkipOrFail skips the test with reason, or fails it in CI, where every test
// must run.
func SkipOrFail(t testing.TB, reason string) {
	t.Helper()
	if inCI() {
		t.Fatalf("CI must run this test, but: %s", reason)
	}
	t.Skip(reason)
}

// RequireRoot skips the test (fails it in CI) unless it runs as root. With
// -short (make test-short) it skips, even as root: the short run is the
// tests that need neither root nor the machine's namespaces and cgroups.
func RequireRoot(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: needs root, namespaces and cgroups")
	}
	if os.Geteuid() != 0 {
		SkipOrFail(t, "needs root: it creates namespaces, cgroups and mounts")
	}
}

var (
	rootfsOnce sync.Once
	rootfsDir  string
	rootfsErr  error
)

// BusyboxRootfs returns a busybox root filesystem shared by every test of the
// package. Tests must not change it; stack never does (writes go to an
// overlay layer). It is built once per test binary in a temporary directory
// removed by Cleanup.
func BusyboxRootfs(t testing.TB) string {
	t.Helper()
	rootfsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "stack-test-rootfs-")
		if err != nil {
			rootfsErr = err
			return
		}
		rootfsDir = filepath.Join(dir, "rootfs")
		rootfsErr = busybox.Install(rootfsDir)
	})
	if rootfsErr != nil {
		SkipOrFail(t, "busybox rootfs: "+rootfsErr.Error())
	}
	return rootfsDir
}

// Cleanup removes the shared rootfs; call it from TestMain after m.Run.
func Cleanup() {
	if rootfsDir != "" {
		os.RemoveAll(filepath.Dir(rootfsDir))
	}
}

// NewBusyboxRootfs builds a private busybox rootfs in a t.TempDir(), for a
// test that alters it.
func NewBusyboxRootfs(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := busybox.Install(dir); err != nil {
		SkipOrFail(t, "busybox rootfs: "+err.Error())
	}
	return dir
}

// StartSleep starts a sleep of 100 seconds as a child of the test, for a
// test that needs a process to signal or wait for; it is killed and
// reaped at the end of the test.
func StartSleep(t testing.TB) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start a sleep: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// OpenFiles is the number of descriptors the test process has open, for a
// test that checks that what it ran left none behind (or held no more
// than it should).
func OpenFiles(t testing.TB) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}
