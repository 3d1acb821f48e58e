package supervisor_test

// The end-to-end tests drive the stack binary as a user would: they build
// it once, run it with a state directory and a cgroup parent of their own,
// and check at the end that nothing of theirs is left: no process, cgroup
// (in any hierarchy), mount or state file.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stack-containers/stack/cgroup"
	"github.com/stack-containers/stack/internal/testenv"
)

// commandTimeout bounds every command a test runs, so that a hang fails
// the test instead of the whole run; it is far above any expected time.
const commandTimeout = 2 * time.Minute

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	testenv.Cleanup()
	os.Exit(code)
}

// stackBinary builds the stack binary once per test run (only the tests
// that need root use it).
func stackBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "stack-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "stack")
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(goruntime.GOROOT(), "bin", "go")
		}
		cmd := exec.Command(goTool, "build", "-o", binPath, "../cmd/stack")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// env is one test's world: a manifest directory, a state directory and a
// cgroup parent that no other test shares.
type env struct {
	t        *testing.T
	bin      string
	dir      string // where stack.yaml is written and commands run
	stateDir string
	cgParent string
	rootfs   string
	host     cgroup.Host
}

func newEnv(t *testing.T) *env {
	t.Helper()
	testenv.RequireRoot(t)
	host, err := cgroup.Probe()
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 4)
	rand.Read(id)
	e := &env{
		t:        t,
		bin:      stackBinary(t),
		dir:      t.TempDir(),
		stateDir: t.TempDir(),
		cgParent: "stack-test-" + hex.EncodeToString(id),
		rootfs:   testenv.BusyboxRootfs(t),
		host:     host,
	}
	t.Cleanup(e.checkClean)
	return e
}

// manifest writes stack.yaml; {{rootfs}} stands for the busybox rootfs.
func (e *env) manifest(text string) {
	e.t.Helper()
	text = strings.ReplaceAll(text, "{{rootfs}}", e.rootfs)
	if err := os.WriteFile(filepath.Join(e.dir, "stack.yaml"), []byte(text), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// command prepares `stack args...` run in dir.
func (e *env) command(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"STACK_STATE_DIR="+e.stateDir,
		"STACK_CGROUP_PARENT="+e.cgParent,
		"NO_COLOR=1",
	)
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// result is how a command ended.
type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// runIn runs `stack args...` in dir to its end.
func (e *env) runIn(dir string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := e.command(ctx, dir, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String(), took: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		e.t.Fatalf("stack %s: %v\nstderr:\n%s", strings.Join(args, " "), err, r.stderr)
	}
	return r
}

// run runs `stack args...` in the manifest's directory.
func (e *env) run(args ...string) result {
	e.t.Helper()
	return e.runIn(e.dir, args...)
}

// mustRun runs a command that must succeed.
func (e *env) mustRun(args ...string) result {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("stack %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// psRow is an element of `ps --format json`, spelled out from SPEC.md
// rather than taken from Status, so that a renamed field fails the tests
// as it would fail a user's script.
type psRow struct {
	Name        string `json:"name"`
	State       string `json:"state"`
	Pid         int    `json:"pid"`
	Restarts    int    `json:"restarts"`
	OOMKills    int    `json:"oom_kills"`
	ExitCode    *int   `json:"exit_code"`
	MemoryLimit int64  `json:"memory_limit"`
	MemoryUsage int64  `json:"memory_usage"`
	Uptime      int64  `json:"uptime"`
}

// ps returns `ps --format json` by container name.
func (e *env) ps(args ...string) map[string]psRow {
	e.t.Helper()
	r := e.mustRun(append(args, "ps", "--format", "json")...)
	var rows []psRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		e.t.Fatalf("ps --format json: %v\n%s", err, r.stdout)
	}
	m := map[string]psRow{}
	for _, row := range rows {
		m[row.Name] = row
	}
	return m
}

// waitFor polls cond until it holds, and fails the test if a generous
// deadline passes first.
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	if !e.eventually(cond) {
		e.t.Fatalf("timed out waiting for %s", what)
	}
}

// eventually polls cond until it holds (true) or a generous deadline
// passes (false).
func (e *env) eventually(cond func() bool) bool {
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// stateFile reads the stack's state file as a generic document.
func (e *env) stateFile(stack string) map[string]any {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.stateDir, stack, "state.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

// supervisorPid is the pid the state file gives for the stack's supervisor.
func (e *env) supervisorPid(stack string) int {
	e.t.Helper()
	sup := e.stateFile(stack)["supervisor"].(map[string]any)
	return int(sup["pid"].(float64))
}

// liveProcs lists the processes that belong to this test: in one of its
// cgroups, or a stack process with its state directory.
func (e *env) liveProcs() []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if e.ownsProc(pid) && !isZombie(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func (e *env) ownsProc(pid int) bool {
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err == nil && bytes.Contains(cg, []byte("/"+e.cgParent+"/")) {
		return true
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	return err == nil && bytes.Contains(environ, []byte("STACK_STATE_DIR="+e.stateDir+"\x00"))
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z'
}

// hierarchies are the mount points of every cgroup hierarchy, each once.
func (e *env) hierarchies() []string {
	var dirs []string
	for _, m := range e.host.V1 {
		dirs = append(dirs, m)
	}
	if e.host.V2 != "" {
		dirs = append(dirs, e.host.V2)
	}
	slices.Sort(dirs)
	return slices.Compact(dirs)
}

// leftCgroups lists the test's cgroup parent and the cgroups below it, in
// any hierarchy: stack made the parent, so it goes too.
func (e *env) leftCgroups() []string {
	var left []string
	for _, h := range e.hierarchies() {
		filepath.WalkDir(filepath.Join(h, e.cgParent), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				left = append(left, p)
			}
			return nil
		})
	}
	return left
}

// leftMounts lists the host's mounts that mention the test's directories.
func (e *env) leftMounts() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	var left []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.Contains(sc.Text(), e.stateDir) || strings.Contains(sc.Text(), e.dir) {
			left = append(left, sc.Text())
		}
	}
	return left
}

// leftState lists what is in the state directory, but for the archive
// cache that every stack shares.
func (e *env) leftState() []string {
	entries, err := os.ReadDir(e.stateDir)
	if err != nil {
		e.t.Fatal(err)
	}
	var left []string
	for _, ent := range entries {
		if ent.Name() != ".cache" {
			left = append(left, ent.Name())
		}
	}
	return left
}

// assertNothingLeft fails the test if a process, cgroup, mount or state
// file of it remains.
func (e *env) assertNothingLeft() {
	e.t.Helper()
	// A process killed a moment ago may still be on its way out.
	deadline := time.Now().Add(10 * time.Second)
	for len(e.liveProcs()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if p := e.liveProcs(); len(p) > 0 {
		e.t.Errorf("processes left: %v", describeProcs(p))
	}
	if c := e.leftCgroups(); len(c) > 0 {
		e.t.Errorf("cgroups left: %v", c)
	}
	if m := e.leftMounts(); len(m) > 0 {
		e.t.Errorf("mounts left: %v", m)
	}
	if s := e.leftState(); len(s) > 0 {
		e.t.Errorf("state left in %s: %v", e.stateDir, s)
	}
}

func describeProcs(pids []int) []string {
	var out []string
	for _, pid := range pids {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		out = append(out, fmt.Sprintf("%d %q", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
	}
	return out
}

// checkClean runs last: it asserts that nothing is left, then removes
// whatever a failed test left so that later tests and runs start clean,
// and finally the test's cgroup parent itself.
func (e *env) checkClean() {
	e.assertNothingLeft()
	for _, pid := range e.liveProcs() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, h := range e.hierarchies() {
		parent := filepath.Join(h, e.cgParent)
		var dirs []string
		filepath.WalkDir(parent, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		// Deepest first: cgroupfs refuses to remove a cgroup with children.
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := removeCgroup(dirs[i]); err != nil {
				e.t.Errorf("remove cgroup %s: %v", dirs[i], err)
			}
		}
	}
}

// removeCgroup removes an empty cgroup, allowing the kernel a moment to
// let go of tasks that have just died.
func removeCgroup(dir string) error {
	var err error
	for i := 0; i < 100; i++ {
		err = syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// background is a command left running while the test goes on.
type background struct {
	cmd    *exec.Cmd
	errBuf bytes.Buffer
	done   chan struct{} // closed once the command has been waited for

	mu  sync.Mutex
	all []string // every line of stdout so far
}

// start runs `stack args...` in the manifest's directory in the background.
func (e *env) start(args ...string) *background {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	b := &background{done: make(chan struct{})}
	b.cmd = e.command(ctx, e.dir, args...)
	b.cmd.Stderr = &b.errBuf
	out, err := b.cmd.StdoutPipe()
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	if err := b.cmd.Start(); err != nil {
		cancel()
		e.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			b.mu.Lock()
			b.all = append(b.all, sc.Text())
			b.mu.Unlock()
		}
		b.cmd.Wait()
		close(b.done)
	}()
	e.t.Cleanup(func() {
		cancel()
		<-b.done
	})
	return b
}

// lines returns the lines of stdout so far.
func (b *background) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.all)
}

// exit waits for the command to end and returns its exit status and
// whole stdout.
func (b *background) exit(t *testing.T) (int, []string) {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(commandTimeout):
		t.Fatal("command did not end")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cmd.ProcessState.ExitCode(), b.all
}
