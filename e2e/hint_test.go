package e2e

import (
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stack-containers/stack/internal/stacktest"
	"github.com/stack-containers/stack/internal/testenv"
)

// TestNotRootHint runs stack as nobody: whichever step fails for lack of
// privilege, the state directory or a cgroup, and whether in the
// foreground or in up -d's background supervisor, the error is followed
// by the hint that stack needs root.
func TestNotRootHint(t *testing.T) {
	testenv.RequireRoot(t)
	// What nobody runs must be reachable by nobody: the stack binary and
	// t.TempDir() are root's alone. Removed after the Envs' checks below,
	// which look into it.
	pub, err := os.MkdirTemp("", "stack-test-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(pub) })
	writeFiles(t, pub, map[string]string{
		"app/stack.yaml": "name: demo\ncontainers:\n  one:\n    rootfs: ./rootfs\n    command: [sleep, \"1000\"]\n    network: none\n",
		"app/rootfs/":    "",
		"state/":         "",
	})
	// Two worlds, each checked for leftovers: closed keeps its state
	// directory as root leaves it (0700), in which the user nobody can neither
	// create nor read anything; open's is world-writable, which lets
	// nobody get past it to the cgroups.
	closed, open := stacktest.New(t), stacktest.New(t)
	closed.Dir = filepath.Join(pub, "app")
	open.Dir, open.StateDir = closed.Dir, filepath.Join(pub, "state")
	exe := filepath.Join(pub, "stack")
	copyExecutable(t, closed.Bin, exe)
	for dir, mode := range map[string]os.FileMode{pub: 0o755, open.StateDir: 0o777} {
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
	}
	const hint = `^hint: stack needs root: it creates namespaces, cgroups and mounts \(run it with sudo\)$`

	asNobody := invocation{dir: closed.Dir, exe: exe,
		user: &syscall.Credential{Uid: 65534, Gid: 65534},
		env:  []string{"STACK_STATE_DIR=" + closed.StateDir, "STACK_CGROUP_PARENT=" + closed.CgroupParent}}
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"up"}, `stack "demo": create state directory \S+/demo: mkdir \S+: permission denied`},
		{[]string{"up", "-d"}, `stack "demo": create state directory \S+/demo: mkdir \S+: permission denied`},
		{[]string{"down"}, `stack "demo": create state directory \S+/demo: mkdir \S+: permission denied`},
		{[]string{"ps"}, `read state: open \S+/demo/state.json: permission denied`},
		{[]string{"logs"}, `read logs: open \S+/demo/containers: permission denied`},
	} {
		asNobody.run(t, tc.args...).expect(t, 1, "stderr", "^stack: error: "+tc.err+"$", "stderr", hint, "!stdout", ".")
	}

	// Past the state directory, up fails at the first cgroup (with no
	// network to make before it), and up -d's supervisor reports that as a
	// permission error too.
	asNobody.env = []string{"STACK_STATE_DIR=" + open.StateDir, "STACK_CGROUP_PARENT=" + open.CgroupParent}
	for _, args := range [][]string{{"up"}, {"up", "-d"}} {
		asNobody.run(t, args...).expect(t, 1,
			"stderr", `^stack: error: container "one": create cgroup: .*/`+open.CgroupParent+`/demo/one: permission denied$`,
			"stderr", hint)
	}
}

// TestUpAlreadyRunning starts a stack with up -d and runs up, then up -d,
// again: both refuse with the same error, hint and exit status.
func TestUpAlreadyRunning(t *testing.T) {
	testenv.RequireRoot(t)
	e := stacktest.New(t)
	writeFiles(t, e.Dir, map[string]string{"stack.yaml": "name: demo\ncontainers:\n  one:\n    rootfs: " +
		testenv.BusyboxRootfs(t) + "\n    command: [sleep, \"1000\"]\n"})
	// Whatever the test did, down clears it (and, after the down below,
	// finds nothing to do), before the Env checks that nothing is left.
	t.Cleanup(func() { ran(e.Run("down")).expect(t, 0) })

	ran(e.Run("up", "-d")).expect(t, 0, "stdout", `^stack "demo" is up: 1 container running$`)
	fg := ran(e.Run("up"))
	fg.expect(t, 1, "stderr", `^stack: error: stack "demo" is already running$`, "stderr", `^hint: stop it first: stack -p demo down$`)
	bg := ran(e.Run("up", "-d"))
	bg.expect(t, 1, "!stdout", ".")
	if bg.stderr != fg.stderr {
		t.Errorf("up -d printed\n%s\nbut up printed\n%s", bg.stderr, fg.stderr)
	}
	ran(e.Run("ps")).expect(t, 0, "stdout", `^one +running `)
	ran(e.Run("down")).expect(t, 0)
}

// copyExecutable copies the executable src to path, executable by everyone.
func copyExecutable(t *testing.T, src, path string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, in); err != nil {
		dst.Close()
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
