package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stack-containers/stack/internal/testenv"
)

// TestNotRootHint runs stack as nobody: whichever step fails for lack of
// privilege, the state directory or a cgroup, and whether in the
// foreground or in up -d's background supervisor, the error is followed
// by the hint that stack needs root.
func TestNotRootHint(t *testing.T) {
	testenv.RequireRoot(t)
	// What nobody runs must be reachable by nobody: the test binary
	// lives in go test's private directory, t.TempDir() is root's alone.
	pub, err := os.MkdirTemp("", "stack-test-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(pub) })
	writeFiles(t, pub, map[string]string{
		"app/stack.yaml": "name: demo\ncontainers:\n  one:\n    rootfs: ./rootfs\n    command: [sleep, \"1000\"]\n",
		"app/rootfs/":    "",
		"state/":         "",
	})
	exe := filepath.Join(pub, "stack")
	copyExecutable(t, exe)
	// The world-writable state directory lets nobody get past it to the
	// cgroups.
	for dir, mode := range map[string]os.FileMode{pub: 0o755, filepath.Join(pub, "state"): 0o777} {
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
	}
	cgParent := cgroupParent(t)
	const hint = `^hint: stack needs root: it creates namespaces, cgroups and mounts \(run it with sudo\)$`

	// A state directory as root leaves it (0700): the user nobody can
	// neither create nor read anything in it.
	rootState := t.TempDir()
	asNobody := invocation{dir: filepath.Join(pub, "app"), exe: exe,
		user: &syscall.Credential{Uid: 65534, Gid: 65534},
		env:  []string{"STACK_STATE_DIR=" + rootState, "STACK_CGROUP_PARENT=" + cgParent}}
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"up"}, `stack "demo": create state directory \S+/demo: mkdir \S+: permission denied`},
		{[]string{"up", "-d"}, `stack "demo": create state directory \S+/demo: mkdir \S+: permission denied`},
		{[]string{"down"}, `stack "demo": create state directory \S+/demo: mkdir \S+: permission denied`},
		{[]string{"ps"}, `read state: open \S+/demo/state.json: permission denied`},
		{[]string{"logs"}, `read logs: open \S+/demo/logs: permission denied`},
	} {
		asNobody.run(t, tc.args...).expect(t, 1, "stderr", "^stack: error: "+tc.err+"$", "stderr", hint, "!stdout", ".")
	}

	// Past the state directory, up fails at the first cgroup, and up -d's
	// supervisor reports that as a permission error too.
	asNobody.env = []string{"STACK_STATE_DIR=" + filepath.Join(pub, "state"), "STACK_CGROUP_PARENT=" + cgParent}
	for _, args := range [][]string{{"up"}, {"up", "-d"}} {
		asNobody.run(t, args...).expect(t, 1,
			"stderr", `^stack: error: stack "demo": container "one": create cgroup: .*/`+cgParent+`/demo/one: permission denied$`,
			"stderr", hint)
	}
	assertNothingLeft(t, cgParent, filepath.Join(pub, "state"))
	assertNothingLeft(t, cgParent, rootState)
}

// TestRootHintOnlyForNonRoot: root's permission errors (a read-only file
// system, an immutable file) are not cured by sudo, so root gets no hint.
func TestRootHintOnlyForNonRoot(t *testing.T) {
	var stderr bytes.Buffer
	a := &app{stderr: &stderr}
	err := fmt.Errorf("stack %q: create state directory: %w", "demo", &fs.PathError{Op: "mkdir", Path: "/run/stack/demo", Err: syscall.EACCES})
	if code := a.report(err); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	want := "stack: error: stack \"demo\": create state directory: mkdir /run/stack/demo: permission denied\n"
	if os.Geteuid() != 0 {
		want += "hint: " + rootHint + "\n"
	}
	if stderr.String() != want {
		t.Errorf("euid %d: report printed\n%s\nwant\n%s", os.Geteuid(), stderr.String(), want)
	}
}

// TestUpAlreadyRunning starts a stack with up -d and runs up, then up -d,
// again: both refuse with the same error, hint and exit status.
func TestUpAlreadyRunning(t *testing.T) {
	testenv.RequireRoot(t)
	dir, stateDir, cgParent := t.TempDir(), t.TempDir(), cgroupParent(t)
	writeFiles(t, dir, map[string]string{"stack.yaml": "name: demo\ncontainers:\n  one:\n    rootfs: " +
		testenv.BusyboxRootfs(t) + "\n    command: [sleep, \"1000\"]\n"})
	in := invocation{dir: dir, env: []string{"STACK_STATE_DIR=" + stateDir, "STACK_CGROUP_PARENT=" + cgParent, "NO_COLOR=1"}}
	t.Cleanup(func() {
		// Whatever the test did, down clears it; then nothing may be left.
		in.run(t, "down").expect(t, 0)
		assertNothingLeft(t, cgParent, stateDir)
	})

	in.run(t, "up", "-d").expect(t, 0, "stdout", `^stack "demo" is up: 1 containers running$`)
	fg := in.run(t, "up")
	fg.expect(t, 1, "stderr", `^stack: error: stack "demo" is already running$`, "stderr", `^hint: stop it first: stack -p demo down$`)
	bg := in.run(t, "up", "-d")
	bg.expect(t, 1, "!stdout", ".")
	if bg.stderr != fg.stderr {
		t.Errorf("up -d printed\n%s\nbut up printed\n%s", bg.stderr, fg.stderr)
	}
	in.run(t, "ps").expect(t, 0, "stdout", `^one +running `)
	in.run(t, "down").expect(t, 0)
}

// copyExecutable copies this test binary to path, executable by everyone.
func copyExecutable(t *testing.T, path string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// cgroupParent is a cgroup parent no other test or run shares.
func cgroupParent(t *testing.T) string {
	id := make([]byte, 4)
	if _, err := rand.Read(id); err != nil {
		t.Fatal(err)
	}
	return "stack-test-" + hex.EncodeToString(id)
}

// assertNothingLeft fails the test if a process, cgroup or state file of
// its stacks remains.
func assertNothingLeft(t *testing.T, cgParent, stateDir string) {
	t.Helper()
	// A process killed a moment ago may still be on its way out.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if len(liveProcs(t, cgParent, stateDir)) == 0 {
			break
		}
	}
	if left := liveProcs(t, cgParent, stateDir); len(left) > 0 {
		t.Errorf("processes left: %v", left)
	}
	if left := leftCgroups(t, cgParent); len(left) > 0 {
		t.Errorf("cgroups left: %v", left)
	}
	entries, err := os.ReadDir(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("state left: %s", filepath.Join(stateDir, e.Name()))
	}
}

// liveProcs lists the running processes that a test's stack owns: in one
// of its cgroups, or a stack with its state directory in the environment.
func liveProcs(t *testing.T, cgParent, stateDir string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cg, cgErr := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		env, envErr := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		stat, statErr := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if cgErr != nil || envErr != nil || statErr != nil {
			continue // gone meanwhile
		}
		// Field 3 of stat, after the parenthesized command, is the state.
		zombie := bytes.Contains(stat, []byte(") Z "))
		ours := bytes.Contains(cg, []byte("/"+cgParent+"/")) || bytes.Contains(env, []byte("STACK_STATE_DIR="+stateDir+"\x00"))
		if ours && !zombie {
			cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if err != nil {
				continue
			}
			left = append(left, fmt.Sprintf("%d %q", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
		}
	}
	return left
}

// leftCgroups lists the cgroups named cgParent: under a v1 controller's
// hierarchy (or the hybrid host's unified one), or at the top of a cgroup2
// host.
func leftCgroups(t *testing.T, cgParent string) []string {
	t.Helper()
	var left []string
	for _, pattern := range []string{"/sys/fs/cgroup/*/" + cgParent, "/sys/fs/cgroup/" + cgParent} {
		found, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		left = append(left, found...)
	}
	return left
}
