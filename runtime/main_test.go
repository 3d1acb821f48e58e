package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stack-containers/stack/internal/testenv"
	"github.com/stack-containers/stack/runtime/containerinit"
)

func TestMain(m *testing.M) {
	// The test binary is the containers' init, as the stack binary is.
	containerinit.MaybeInit()
	os.Exit(runTests(m))
}

// runTests runs the tests with every temporary file (rootfs, layers,
// caches, bind sources) in one directory of their own, and checks that
// afterwards nothing is mounted there, none of it is left, and no
// container outlives the tests.
func runTests(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "stack-runtime-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	os.Setenv("TMPDIR", tmp)
	code := m.Run()
	testenv.Cleanup()
	info, err := readMountinfo()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	for _, line := range strings.Split(info, "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], tmp) {
			fmt.Fprintf(os.Stderr, "the tests left a mount on the host: %s\n", line)
			code = 1
		}
	}
	if entries, err := os.ReadDir(tmp); err != nil || len(entries) > 0 {
		fmt.Fprintf(os.Stderr, "the tests left files in %s: %v (%v)\n", tmp, entries, err)
		code = 1
	}
	if pids, err := childPids(); err != nil || len(pids) > 0 {
		fmt.Fprintf(os.Stderr, "processes left running by the tests: %v (%v)\n", pids, err)
		code = 1
	}
	if err := os.Remove(tmp); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	return code
}

func readMountinfo() (string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	return string(b), err
}

// childPids lists the live child processes of the test process.
func childPids() ([]string, error) {
	tasks, err := filepath.Glob("/proc/self/task/*/children")
	if err != nil {
		return nil, err
	}
	var pids []string
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err != nil && !errors.Is(err, fs.ErrNotExist) { // a thread may end meanwhile
			return nil, err
		}
		pids = append(pids, strings.Fields(string(b))...)
	}
	return pids, nil
}

// newSpec is a container of the default namespaces running args on rootfs,
// with a layer of the test's own.
func newSpec(t *testing.T, rootfs string, args ...string) *Spec {
	t.Helper()
	dir := t.TempDir()
	return &Spec{
		Name:       "test",
		Rootfs:     rootfs,
		Args:       args,
		Namespaces: []string{"pid", "mount", "uts", "ipc", "net"},
		LayerDir:   filepath.Join(dir, "layer"),
	}
}

// run runs the container to its end and cleans it up, checking that its
// layer is gone; it returns what it wrote on stdout and stderr.
func run(t *testing.T, spec *Spec) (string, ExitStatus) {
	t.Helper()
	c, out, st := runToEnd(t, spec)
	if err := c.Cleanup(); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	for _, dir := range []string{spec.LayerDir, containerinit.WorkDir(spec.LayerDir)} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s still there after Cleanup (stat: %v)", dir, err)
		}
	}
	return out, st
}

// runToEnd runs the container to its end, leaving its cleanup to the
// caller; it returns what it wrote on stdout and stderr.
func runToEnd(t *testing.T, spec *Spec) (*Container, string, ExitStatus) {
	t.Helper()
	var out bytes.Buffer
	spec.Stdout, spec.Stderr = &out, &out
	c, err := Start(spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	st, err := c.Wait()
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return c, out.String(), st
}
