package examples

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stack-containers/stack/internal/busybox"
	"github.com/stack-containers/stack/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite many/stack.yaml instead of checking it")

// tools are built once by TestMain and only read by the tests.
var tools struct {
	stack    string // the stack binary, built from ../cmd/stack
	mkrootfs string
	build    string // every example's tree, built by mkrootfs
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "stack-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	tools.stack = filepath.Join(dir, "stack")
	tools.mkrootfs = filepath.Join(dir, "mkrootfs")
	tools.build = filepath.Join(dir, "build")
	steps := [][]string{
		{"go", "build", "-trimpath", "-o", dir + "/",
			"github.com/stack-containers/stack/cmd/stack",
			"github.com/stack-containers/stack/examples/cmd/mkrootfs"},
		// Without busybox, mkrootfs skips the seed's tree and says so; the
		// tests that need it skip (fail in CI) on their own.
		{tools.mkrootfs, "-o", tools.build, "-src", "."},
	}
	for _, args := range steps {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n%s", strings.Join(args, " "), err, out)
			return 1
		}
	}
	return m.Run()
}

// requireBusybox skips the test (fails it in CI) without a static busybox,
// which the seed's shell scripts need.
func requireBusybox(t *testing.T) {
	t.Helper()
	if _, err := busybox.Path(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must run this test, but: %v", err)
		}
		t.Skip(err)
	}
}

// needs skips the test (fails it in CI) when the host lacks what the
// example needs besides root.
func needs(t *testing.T, name string) {
	t.Helper()
	if name == "seed" {
		requireBusybox(t)
	}
}

// example copies an example's directory into a fresh temporary directory
// beside a link to the built trees, so that its ../build/<name> resolves
// there and the test never writes into the source tree. It returns the
// copied manifest's path.
func example(t *testing.T, name string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.Symlink(tools.build, filepath.Join(root, "build")); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(root, name)
	if err := os.CopyFS(dst, os.DirFS(name)); err != nil {
		t.Fatalf("copy example %s: %v", name, err)
	}
	return filepath.Join(dst, "stack.yaml")
}

// session runs the stack binary with a state directory and a cgroup parent
// of its own, and checks at the end of the test that nothing is left.
type session struct {
	state  string
	parent string
	env    []string
}

func newSession(t *testing.T) *session {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	s := &session{state: t.TempDir(), parent: "stack-test-" + hex.EncodeToString(b[:])}
	s.env = append(os.Environ(), "STACK_STATE_DIR="+s.state, "STACK_CGROUP_PARENT="+s.parent, "NO_COLOR=1")
	t.Cleanup(func() { s.checkNothingLeft(t) })
	return s
}

type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// run runs stack with args and returns what it printed and its exit status.
// The timeout only keeps a hung command from hanging the test.
func (s *session) run(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tools.stack, args...)
	cmd.Env = s.env
	// A background supervisor that kept stack's stdout would make Run
	// wait for it; this turns that into an error (exec.ErrWaitDelay).
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("stack %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("stack %s: no answer within the timeout\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.stdout, r.stderr)
	}
	return r
}

// mustRun is run for a command that has to succeed.
func (s *session) mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := s.run(t, args...)
	if r.code != 0 {
		t.Fatalf("stack %s: exit status %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// downAtEnd downs the stack at the end of the test, whatever happens in
// between; a second down is not an error.
func (s *session) downAtEnd(t *testing.T, manifest string) {
	t.Cleanup(func() {
		if r := s.run(t, "down", manifest); r.code != 0 {
			t.Errorf("stack down: exit status %d: %s", r.code, r.stderr)
		}
	})
}

// upDetached starts the stack in the background.
func (s *session) upDetached(t *testing.T, manifest string) result {
	t.Helper()
	s.downAtEnd(t, manifest)
	return s.mustRun(t, "up", "-d", manifest)
}

// upForeground runs the stack in the foreground to its end and checks
// up's exit status.
func (s *session) upForeground(t *testing.T, manifest string, wantCode int, why string) result {
	t.Helper()
	s.downAtEnd(t, manifest)
	r := s.run(t, "up", manifest)
	t.Logf("up ran for %v:\n%s", r.took, r.stdout)
	if r.code != wantCode {
		t.Errorf("up: exit status %d; want %d (%s)\n%s", r.code, wantCode, why, r.stderr)
	}
	return r
}

// psRow is one element of `stack ps --format json`, spelled out from
// SPEC.md rather than borrowed from the supervisor, so that a renamed field
// breaks this test as it would break a user's script.
type psRow struct {
	Name        string `json:"name"`
	State       string `json:"state"`
	Pid         int    `json:"pid"`
	Restarts    int    `json:"restarts"`
	OOMKills    int    `json:"oom_kills"`
	ExitCode    *int   `json:"exit_code"`
	MemoryLimit int64  `json:"memory_limit"`
	MemoryUsage int64  `json:"memory_usage"`
}

func (s *session) ps(t *testing.T, manifest string) map[string]psRow {
	t.Helper()
	r := s.mustRun(t, "-f", manifest, "ps", "--format", "json")
	var rows []psRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("stack ps --format json: %v\n%s", err, r.stdout)
	}
	byName := make(map[string]psRow, len(rows))
	for _, row := range rows {
		byName[row.Name] = row
	}
	return byName
}

// checkNothingLeft fails the test for any process, cgroup, mount or state
// the stack left behind, and removes what it finds: all of it is this
// session's (its cgroup parent and state directory are unique, and the
// stack binary's path is this test binary's own).
func (s *session) checkNothingLeft(t *testing.T) {
	t.Helper()
	// A supervisor that down has signalled may take a moment to exit.
	var left []int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		left = s.processes(t)
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, pid := range left {
		t.Errorf("process %d (%s) left running; killing it", pid, cmdline(pid))
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Errorf("kill %d: %v", pid, err)
		}
	}
	mounts, roots := readMountinfo(t)
	for _, m := range mounts {
		if m == s.state || strings.HasPrefix(m, s.state+"/") {
			t.Errorf("mount %s left behind", m)
		}
	}
	for _, root := range roots {
		dir := filepath.Join(root, s.parent)
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		// Only the session's parent itself may remain (down prunes it
		// only while no other stack uses it); whatever is in it was left.
		for _, cg := range slices.Backward(cgroupTree(t, dir)) {
			if cg != dir {
				t.Errorf("cgroup %s left behind", cg)
			}
			removeCgroup(t, cg)
		}
	}
	entries, err := os.ReadDir(s.state)
	if err != nil {
		t.Errorf("read state directory: %v", err)
	}
	for _, e := range entries {
		t.Errorf("state %s left behind", filepath.Join(s.state, e.Name()))
	}
}

// cgroupTree lists dir and the cgroups under it, parents first.
func cgroupTree(t *testing.T, dir string) []string {
	t.Helper()
	var tree []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			tree = append(tree, p)
		}
		return err
	})
	if err != nil {
		t.Errorf("walk cgroup %s: %v", dir, err)
	}
	return tree
}

// removeCgroup removes an empty cgroup; the kernel reports a cgroup busy
// for a moment after its last process was killed.
func removeCgroup(t *testing.T, dir string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		err := os.Remove(dir)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			t.Errorf("remove cgroup %s: %v", dir, err)
			return
		}
	}
}

// processes lists the processes of this session: running the stack binary
// (supervisors, inits before they exec) or in a cgroup under its parent.
func (s *session) processes(t *testing.T) []int {
	t.Helper()
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		// Either read fails only when the process has just ended.
		exe, _ := os.Readlink(filepath.Join("/proc", d.Name(), "exe"))
		cg, _ := os.ReadFile(filepath.Join("/proc", d.Name(), "cgroup"))
		if exe == tools.stack || bytes.Contains(cg, []byte("/"+s.parent+"/")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// cmdline describes a process for a message; a process that has just ended
// is described by nothing.
func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
}

// readMountinfo returns every mount point of this mount namespace, and the
// ones of cgroup hierarchies apart.
func readMountinfo(t *testing.T) (mounts, cgroupRoots []string) {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if len(fields) < 5 || sep < 0 || sep+1 >= len(fields) {
			continue
		}
		// The kernel escapes blanks in paths as octal (\040).
		mnt, err := strconv.Unquote(`"` + fields[4] + `"`)
		if err != nil {
			mnt = fields[4]
		}
		mounts = append(mounts, mnt)
		if fs := fields[sep+1]; fs == "cgroup" || fs == "cgroup2" {
			cgroupRoots = append(cgroupRoots, mnt)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return mounts, cgroupRoots
}

// lines counts the lines of out that match the pattern.
func lines(out, pattern string) int {
	return len(regexp.MustCompile("(?m)"+pattern).FindAllStringIndex(out, -1))
}

// exampleNames lists the examples: the directories holding a stack.yaml.
func exampleNames(t *testing.T) []string {
	t.Helper()
	manifests, err := filepath.Glob("*/stack.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range manifests {
		names = append(names, filepath.Dir(m))
	}
	if len(names) < 4 {
		t.Fatalf("found examples %v; want at least seed, web, crashloop and many", names)
	}
	return names
}

// manifestShape is what the test reads back from a manifest or from the
// normalized one `stack config` prints.
type manifestShape struct {
	Name       string `yaml:"name"`
	Containers map[string]struct {
		Rootfs string `yaml:"rootfs"`
	} `yaml:"containers"`
}

func TestConfig(t *testing.T) {
	for _, name := range exampleNames(t) {
		t.Run(name, func(t *testing.T) {
			needs(t, name)
			s := newSession(t)
			manifest := example(t, name)
			r := s.run(t, "config", manifest)
			if r.code != 0 {
				t.Fatalf("stack config: exit status %d\n%s", r.code, r.stderr)
			}
			var src, got manifestShape
			raw, err := os.ReadFile(manifest)
			if err != nil {
				t.Fatal(err)
			}
			if err := yaml.Unmarshal(raw, &src); err != nil {
				t.Fatalf("%s: %v", manifest, err)
			}
			if err := yaml.Unmarshal([]byte(r.stdout), &got); err != nil {
				t.Fatalf("stack config printed no YAML: %v\n%s", err, r.stdout)
			}
			if got.Name != name {
				t.Errorf("stack name %q; want %q (the example's directory)", got.Name, name)
			}
			if len(got.Containers) != len(src.Containers) {
				t.Errorf("%d containers; the manifest has %d", len(got.Containers), len(src.Containers))
			}
			want, err := os.Stat(filepath.Join(tools.build, name))
			if err != nil {
				t.Fatal(err)
			}
			for c := range src.Containers {
				fi, err := os.Stat(got.Containers[c].Rootfs)
				if err != nil || !os.SameFile(fi, want) {
					t.Errorf("container %s: rootfs %q (%v); want the built tree %s", c, got.Containers[c].Rootfs, err, want.Name())
				}
			}
			// The normalized manifest is itself a manifest, and a fixed
			// point: what the README tells users to rely on.
			again := filepath.Join(filepath.Dir(manifest), "normalized.yaml")
			if err := os.WriteFile(again, []byte(r.stdout), 0o644); err != nil {
				t.Fatal(err)
			}
			if r2 := s.mustRun(t, "config", again); r2.stdout != r.stdout {
				t.Errorf("stack config of its own output differs:\n%s\nvs\n%s", r2.stdout, r.stdout)
			}
		})
	}
}

func TestSeedUp(t *testing.T) {
	testenv.RequireRoot(t)
	requireBusybox(t)
	s := newSession(t)
	manifest := example(t, "seed")
	r := s.upForeground(t, manifest, 1, "mem's last run was OOM-killed")
	// Each run's end says whether the OOM killer ended it (from the
	// cgroup's count, not from the live notification, which may coalesce).
	if n := lines(r.stdout, `^mem +\* exited with status 137 \(killed by SIGKILL\), OOM-killed$`); n != 4 {
		t.Errorf("%d OOM-killed ends of mem in the output; want 4 (the first run and 3 restarts)", n)
	}
	if lines(r.stdout, `^mem +\* gave up after 3 restarts`) != 1 {
		t.Errorf("no 'gave up after 3 restarts' event for mem")
	}
	if lines(r.stdout, `^calm +\| done, never near the limit$`) != 1 || lines(r.stdout, `^calm +\* exited with status 0$`) != 1 {
		t.Errorf("calm did not finish cleanly")
	}

	// ps and logs still answer after the stack has ended, until down.
	ps := s.ps(t, manifest)
	// The OOM killer may take more than one process of a run (the shell
	// and dd), so every run counts at least one kill.
	if mem := ps["mem"]; mem.State != "exited" || mem.Restarts != 3 || mem.OOMKills < 4 || mem.ExitCode == nil || *mem.ExitCode != 137 || mem.MemoryLimit != 2000000 {
		t.Errorf("ps: mem %+v; want exited with 137 after 3 restarts and at least 4 OOM kills, limit 2000000", mem)
	}
	if calm := ps["calm"]; calm.State != "exited" || calm.OOMKills != 0 || calm.ExitCode == nil || *calm.ExitCode != 0 {
		t.Errorf("ps: calm %+v; want exited with 0, no OOM kill", calm)
	}
	if logs := s.mustRun(t, "-f", manifest, "logs", "calm"); lines(logs.stdout, `round [1-4] of 4: 20000 random bytes hash to [0-9a-f]{32}`) != 4 {
		t.Errorf("logs calm: want its 4 rounds:\n%s", logs.stdout)
	}
	s.mustRun(t, "down", manifest)
}

func TestCrashloopUp(t *testing.T) {
	testenv.RequireRoot(t)
	s := newSession(t)
	manifest := example(t, "crashloop")
	r := s.upForeground(t, manifest, 1, "flaky's last exit was 3")
	// The delays come from the policy, not from a clock: 100ms doubling,
	// capped at 1s.
	var delays []string
	for _, m := range regexp.MustCompile(`(?m)^flaky +\* restarting in (\S+) \(attempt (\d) of 5\)$`).FindAllStringSubmatch(r.stdout, -1) {
		delays = append(delays, m[1])
	}
	if want := []string{"100ms", "200ms", "400ms", "800ms", "1s"}; !slices.Equal(delays, want) {
		t.Errorf("flaky's restart delays %v; want %v", delays, want)
	}
	if lines(r.stdout, `^flaky +\* gave up after 5 restarts$`) != 1 {
		t.Errorf("no 'gave up after 5 restarts' event for flaky")
	}
	if lines(r.stdout, `^once +\* exited with status 0$`) != 1 || lines(r.stdout, `^once +\* restarting`) != 0 {
		t.Errorf("once: want one clean exit and no restart")
	}
	ps := s.ps(t, manifest)
	if f := ps["flaky"]; f.Restarts != 5 || f.ExitCode == nil || *f.ExitCode != 3 {
		t.Errorf("ps: flaky %+v; want 5 restarts, exit code 3", f)
	}
	s.mustRun(t, "down", manifest)
}

func TestWebUp(t *testing.T) {
	testenv.RequireRoot(t)
	s := newSession(t)
	manifest := example(t, "web")
	up := s.upDetached(t, manifest)
	t.Logf("up -d took %v", up.took)

	// The client reaches the server only through the net namespace it
	// joined; its first calls may come before the server listens.
	answered := regexp.MustCompile(`(?m)^client +\| GET http://127\.0\.0\.1:8080/: hello #\d+ from server \(pid 1\)$`)
	var logs result
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		logs = s.mustRun(t, "-f", manifest, "logs")
		if answered.MatchString(logs.stdout) || time.Now().After(deadline) {
			break
		}
	}
	if !answered.MatchString(logs.stdout) {
		if strings.Contains(logs.stdout, "network is unreachable") {
			t.Errorf("the loopback interface of the server's net namespace is down: a new net namespace needs lo brought up before the program runs")
		}
		t.Fatalf("the client never got an answer from the server:\n%s", logs.stdout)
	}
	if lines(logs.stdout, `^server +\| listening on http://127\.0\.0\.1:8080 as server \(pid 1\)$`) != 1 {
		t.Errorf("logs: no 'listening' line from the server:\n%s", logs.stdout)
	}
	if lines(logs.stdout, `^worker +\| round \d+: hashed 1024 KiB`) == 0 {
		t.Errorf("logs: no round from the worker:\n%s", logs.stdout)
	}

	limits := map[string]int64{"server": 32 << 20, "client": 32 << 20, "worker": 16 << 20}
	ps := s.ps(t, manifest)
	for name, limit := range limits {
		row := ps[name]
		if row.State != "running" || row.Pid <= 0 || row.MemoryLimit != limit {
			t.Errorf("ps: %s %+v; want running with a pid and memory limit %d", name, row, limit)
		}
		if row.MemoryUsage <= 0 || row.MemoryUsage >= limit {
			t.Errorf("ps: %s uses %d bytes; want some, under its limit %d", name, row.MemoryUsage, limit)
		}
		t.Logf("%s: memory %d KiB of %d KiB", name, row.MemoryUsage>>10, limit>>10)
	}
	down := s.mustRun(t, "down", manifest)
	t.Logf("down took %v", down.took)
}

func TestManyUp(t *testing.T) {
	testenv.RequireRoot(t)
	s := newSession(t)
	manifest := example(t, "many")
	up := s.upDetached(t, manifest)
	ps := s.ps(t, manifest)
	if len(ps) != 50 {
		t.Errorf("ps shows %d containers; want 50", len(ps))
	}
	var usage int64
	for name, row := range ps {
		if row.State != "running" || row.Pid <= 0 {
			t.Errorf("ps: %s %+v; want running", name, row)
		}
		usage += row.MemoryUsage
	}
	down := s.mustRun(t, "down", manifest)
	t.Logf("50 containers: up -d %v, down %v, memory in use %d KiB in all", up.took, down.took, usage>>10)
}

// TestReadmeManifests loads every manifest of the README through `stack
// config`: the reference (a yaml block with containers) and the ones written
// by a heredoc. Their rootfs and mount sources are stand-ins made here;
// what is checked is that the fields and values shown are valid together.
func TestReadmeManifests(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var manifests []string
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(readme), -1) {
		if strings.Contains(m[1], "containers:") {
			manifests = append(manifests, m[1])
		}
	}
	for _, m := range regexp.MustCompile(`(?s)cat > \S+ <<'EOF'\n(.*?)\nEOF\n`).FindAllStringSubmatch(string(readme), -1) {
		manifests = append(manifests, m[1]+"\n")
	}
	if len(manifests) < 2 {
		t.Fatalf("found %d manifests in the README; want the reference and the first stack", len(manifests))
	}
	s := newSession(t)
	for i, text := range manifests {
		dir := t.TempDir()
		var m struct {
			Containers map[string]struct {
				Rootfs string   `yaml:"rootfs"`
				Mounts []string `yaml:"mounts"`
			} `yaml:"containers"`
		}
		if err := yaml.Unmarshal([]byte(text), &m); err != nil {
			t.Errorf("README manifest %d: %v\n%s", i+1, err, text)
			continue
		}
		for _, c := range m.Containers {
			paths := []string{c.Rootfs}
			for _, mount := range c.Mounts {
				paths = append(paths, strings.Split(mount, ":")[0])
			}
			for _, p := range paths {
				standIn(t, filepath.Join(dir, p))
			}
		}
		manifest := filepath.Join(dir, "stack.yaml")
		if err := os.WriteFile(manifest, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := s.run(t, "config", "-q", manifest); r.code != 0 {
			t.Errorf("README manifest %d: stack config: exit status %d\n%s\n%s", i+1, r.code, r.stderr, text)
		}
	}
}

// TestReadmeCoversEverything checks that the README's manifest reference
// shows every field of schema.json, and that it documents every command
// `stack help` lists, each under its own heading.
func TestReadmeCoversEverything(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties map[string]any `json:"properties"`
		Defs       struct {
			Container struct {
				Properties map[string]struct {
					OneOf []struct {
						Properties map[string]any `json:"properties"`
					} `json:"oneOf"`
				} `json:"properties"`
			} `json:"container"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatalf("schema.json: %v", err)
	}
	fields := slices.Collect(maps.Keys(schema.Properties))
	for name, p := range schema.Defs.Container.Properties {
		fields = append(fields, name)
		for _, alt := range p.OneOf {
			fields = slices.AppendSeq(fields, maps.Keys(alt.Properties))
		}
	}
	if len(fields) < 20 {
		t.Fatalf("read %d fields from schema.json; its layout changed?", len(fields))
	}
	var reference string
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(readme), -1) {
		if strings.Contains(m[1], "containers:") {
			reference = m[1]
			break
		}
	}
	for _, f := range fields {
		if !regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(f) + `:`).MatchString(reference) {
			t.Errorf("the README's manifest reference does not show the field %q", f)
		}
	}

	s := newSession(t)
	help := s.mustRun(t, "help")
	_, list, ok := strings.Cut(help.stdout, "Commands:\n")
	if !ok {
		t.Fatalf("stack help lists no commands:\n%s", help.stdout)
	}
	list, _, _ = strings.Cut(list, "\n\n")
	for _, line := range strings.Split(list, "\n") {
		cmd := strings.Fields(line)[0]
		if cmd == "help" {
			continue
		}
		if !regexp.MustCompile("(?m)^### `stack " + regexp.QuoteMeta(cmd) + "[ `]").MatchString(string(readme)) {
			t.Errorf("the README has no section for `stack %s`", cmd)
		}
	}
}

// standIn makes a rootfs or mount source at p: an archive of the crashloop
// tree when the name says archive, else a directory.
func standIn(t *testing.T, p string) {
	t.Helper()
	if !strings.HasSuffix(p, ".tar") && !strings.HasSuffix(p, ".tar.gz") && !strings.HasSuffix(p, ".tgz") {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		return
	}
	args := []string{"-C", filepath.Join(tools.build, "crashloop"), "-cf", p, "."}
	if !strings.HasSuffix(p, ".tar") {
		args[2] = "-czf"
	}
	if out, err := exec.Command("tar", args...).CombinedOutput(); err != nil {
		t.Fatalf("tar %v: %v\n%s", args, err, out)
	}
}

// demoCopy lays out the demo and the examples it runs as in the
// repository, and returns the copied script.
func demoCopy(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "examples")
	for _, name := range []string{"web", "seed"} {
		if err := os.CopyFS(filepath.Join(dir, name), os.DirFS(name)); err != nil {
			t.Fatal(err)
		}
	}
	script, err := os.ReadFile("demo.sh")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "demo.sh"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(tools.build, filepath.Join(dir, "build")); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "demo.sh")
}

// TestDemo runs the tour of `make demo` on a copy of the examples, so that
// the demo cannot rot either.
func TestDemo(t *testing.T) {
	testenv.RequireRoot(t)
	requireBusybox(t)
	s := newSession(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, demoCopy(t), tools.stack)
	cmd.Env = s.env
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("the tour took %v:\n%s", time.Since(start), out)
	if err != nil {
		t.Fatalf("demo.sh: %v", err)
	}
	for _, want := range []string{
		`^stack "web" is up: 3 containers running$`,
		`^worker +\| round \d+: hashed 1024 KiB`,
		`^mem +\* exited with status 137 \(killed by SIGKILL\), OOM-killed$`,
		`^mem +\* restarting in 100ms \(attempt 1 of 3\)$`,
		`^mem +\* gave up after 3 restarts$`,
		`^calm +exited +0 +0 +0 .* exit 0$`,
		`^Done\.`,
	} {
		if lines(string(out), want) == 0 {
			t.Errorf("the tour shows no line matching %s", want)
		}
	}
}

// TestDemoInterrupted presses Ctrl-C (SIGINT to the tour's process group,
// as a terminal does) once the web stack is up: the tour must down it.
func TestDemoInterrupted(t *testing.T) {
	testenv.RequireRoot(t)
	s := newSession(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, demoCopy(t), tools.stack)
	cmd.Env = s.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), `stack "web" is up`) {
			if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
				t.Errorf("interrupt the tour: %v", err)
			}
			break
		}
	}
	// Drain the rest, so that the script never blocks on a full pipe.
	rest, _ := io.ReadAll(stdout)
	out.Write(rest)
	err = cmd.Wait()
	t.Logf("output:\n%s\nstderr:\n%s", out.String(), stderr.String())
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 130 {
		t.Errorf("demo.sh after Ctrl-C: %v; want exit status 130", err)
	}
	// checkNothingLeft, at the end of the test, sees whether it downed web.
}

// manyManifest is many/stack.yaml: 50 copies of one small service.
func manyManifest() []byte {
	var b bytes.Buffer
	b.WriteString(`# yaml-language-server: $schema=../../schema.json
#
# Fifty small services, to show how fast stack starts and stops a stack and
# what ps shows. Each prints one line when ready and exits cleanly on SIGTERM.
#
# Generated: go test ./examples -run TestManyManifest -update
name: many
containers:
`)
	for i := 1; i <= 50; i++ {
		fmt.Fprintf(&b, "  idle-%02d:\n    rootfs: ../build/many\n    command: /bin/idle\n    memory: 16M\n    pids: 16\n", i)
	}
	return b.Bytes()
}

func TestManyManifest(t *testing.T) {
	path := filepath.Join("many", "stack.yaml")
	want := manyManifest()
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date: go test ./examples -run TestManyManifest -update", path)
	}
}

func TestRootfsReproducible(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	digests := func(dir string) map[string]string {
		out, err := exec.Command(tools.mkrootfs, "-o", dir, "-src", ".").Output()
		if err != nil {
			t.Fatalf("mkrootfs -o %s: %v", dir, err)
		}
		m := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			path, sum, ok := strings.Cut(line, "  ")
			if !ok {
				t.Fatalf("mkrootfs printed %q; want PATH  sha256:HEX", line)
			}
			m[filepath.Base(path)] = sum
		}
		return m
	}
	first := digests(a)
	second := digests(b)
	// Building over an existing tree replaces it by the same tree.
	rebuilt := digests(a)
	for name, sum := range first {
		if second[name] != sum || rebuilt[name] != sum {
			t.Errorf("tree %s: digests %s, %s, %s; want all equal", name, sum, second[name], rebuilt[name])
		}
	}
	ea, eb := entries(t, a), entries(t, b)
	if !slices.Equal(ea, eb) {
		for i := range min(len(ea), len(eb)) {
			if ea[i] != eb[i] {
				t.Fatalf("trees differ first at\n  %s\n  %s", ea[i], eb[i])
			}
		}
		t.Fatalf("trees differ: %d entries vs %d", len(ea), len(eb))
	}
	if len(ea) == 0 {
		t.Fatal("mkrootfs built nothing")
	}
}

// entries describes every entry under dir, in lexical order, by path, mode,
// mtime and content (or link target); every mtime must be the epoch.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	var list []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if !fi.ModTime().Equal(busybox.Epoch) {
			t.Errorf("%s: mtime %v; want %v", rel, fi.ModTime(), busybox.Epoch)
		}
		var content []byte
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			content = []byte(target)
			if err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			if content, err = os.ReadFile(p); err != nil {
				return err
			}
		}
		list = append(list, fmt.Sprintf("%s %v %x", rel, fi.Mode(), sha256.Sum256(content)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return list
}
