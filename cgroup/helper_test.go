package cgroup

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/testenv"
)

// The test binary doubles as the child process the real tests put in a
// cgroup: run with helperEnv set, it does one thing and exits.
const helperEnv = "STACK_CGROUP_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(m.Run())
}

// runHelper is the child's side. Every mode first waits for a line on
// stdin, so that the parent can move it into a cgroup before it does
// anything worth charging there.
//
//   - "alloc N": allocate and touch N MiB, then exit 0 (if still alive).
//   - "block": use 4 MiB, print the child's /proc/self/cgroup and "ready",
//     then wait for stdin to close.
//   - "devices DIR": try each device access of deviceProbes (DIR holds the
//     nodes it makes), print "NAME: ok" or "NAME: ERRNO" for each, then
//     "done".
func runHelper(mode string) int {
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		fmt.Fprintln(os.Stderr, "helper: read go signal:", err)
		return 2
	}
	switch {
	case mode == "block":
		// Enough memory that the cgroup's accounting cannot miss it.
		buf := touch(4 << 20)
		self, err := os.ReadFile("/proc/self/cgroup")
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 2
		}
		fmt.Printf("%sready\n", self)
		io.Copy(io.Discard, in)
		runtime.KeepAlive(buf)
		return 0
	case strings.HasPrefix(mode, "devices "):
		dir := strings.TrimPrefix(mode, "devices ")
		for _, p := range deviceProbes {
			result := "ok"
			if err := p.try(dir); err != nil {
				result = unix.ErrnoName(err.(unix.Errno))
			}
			fmt.Printf("%s: %s\n", p.name, result)
		}
		fmt.Println("done")
		return 0
	case strings.HasPrefix(mode, "alloc "):
		mib, err := strconv.Atoi(strings.TrimPrefix(mode, "alloc "))
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 2
		}
		touch(mib << 20)
		fmt.Println("allocated")
		return 0
	}
	fmt.Fprintln(os.Stderr, "helper: unknown mode", mode)
	return 2
}

// touch allocates n bytes and writes to every page, since fresh pages are
// only charged once touched.
func touch(n int) []byte {
	buf := make([]byte, n)
	for i := 0; i < len(buf); i += os.Getpagesize() {
		buf[i] = 1
	}
	return buf
}

// child is a running helper process.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	// stderr may be read once the child has been waited for.
	stderr *strings.Builder
}

// startHelper starts the test binary in helper mode; configure, when not
// nil, adjusts the command first (SysProcAttr for CLONE_INTO_CGROUP). The child is killed and reaped
// when the test ends, if the test has not done so.
func startHelper(t *testing.T, mode string, configure func(*exec.Cmd)) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	stderr := new(strings.Builder)
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if configure != nil {
		configure(cmd)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper %q: %v", mode, err)
	}
	c := &child{cmd: cmd, stdin: stdin, stdout: bufio.NewReader(stdout), stderr: stderr}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return c
}

// release lets the helper go on past its first read.
func (c *child) release(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		t.Fatalf("release helper: %v", err)
	}
}

// readUntil returns the lines the helper prints up to the line last.
func (c *child) readUntil(t *testing.T, last string) []string {
	t.Helper()
	var lines []string
	for {
		line, err := c.stdout.ReadString('\n')
		if err != nil {
			t.Fatalf("helper output %q, then %v before %q", lines, err, last)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == last {
			return lines
		}
		lines = append(lines, line)
	}
}

// hostFor probes the host for a root-only test.
func hostFor(t *testing.T) Host {
	t.Helper()
	testenv.RequireRoot(t)
	h, err := Probe()
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	return h
}

// hierarchyRoots lists every cgroup hierarchy the host mounts, each once.
func hierarchyRoots(h Host) []string {
	seen := map[string]bool{}
	var roots []string
	for _, m := range h.V1 {
		if !seen[m] {
			seen[m] = true
			roots = append(roots, m)
		}
	}
	if h.V2 != "" && !seen[h.V2] {
		roots = append(roots, h.V2)
	}
	return roots
}

// testParent returns a cgroup path unique to this test run, and fails the
// test if, when it ends, that path is left in any hierarchy (removing it
// then, so that one failure does not leak into the machine).
func testParent(t *testing.T, h Host) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	parent := fmt.Sprintf("stack-test-%d-%s", os.Getpid(), hex.EncodeToString(b))
	t.Cleanup(func() {
		leaked := false
		for _, root := range hierarchyRoots(h) {
			dir := filepath.Join(root, parent)
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("test left cgroup %s behind", dir)
				leaked = true
			}
		}
		if !leaked {
			return
		}
		for _, d := range hostDrivers(h) {
			c := d.Load(parent)
			if err := c.Kill(); err != nil {
				t.Errorf("clean up after the test: %v", err)
			}
			if err := c.Destroy(); err != nil {
				t.Errorf("clean up after the test: %v", err)
			}
		}
	})
	return parent
}

// hostDrivers is a driver for each version the host has a hierarchy of.
func hostDrivers(h Host) []Driver {
	var ds []Driver
	if len(h.V1) > 0 {
		ds = append(ds, NewV1(h.V1))
	}
	if h.V2 != "" {
		ds = append(ds, NewV2(h.V2))
	}
	return ds
}
