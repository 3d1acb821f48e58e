package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/stacktest"
	"github.com/stack-containers/stack/internal/testenv"
)

// env is a stacktest.Env with the shared busybox rootfs for its manifests.
type env struct {
	*stacktest.Env
	t      *testing.T
	rootfs string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	testenv.RequireRoot(t)
	return &env{Env: stacktest.New(t), t: t, rootfs: testenv.BusyboxRootfs(t)}
}

// manifest writes stack.yaml; {{rootfs}} stands for the busybox rootfs.
func (e *env) manifest(text string) {
	e.t.Helper()
	text = strings.ReplaceAll(text, "{{rootfs}}", e.rootfs)
	if err := os.WriteFile(filepath.Join(e.Dir, "stack.yaml"), []byte(text), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// stateFile reads the stack's state file as a generic document.
func (e *env) stateFile(stack string) map[string]any {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.StateDir, stack, "state.json"))
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

// outputLines groups the `NAME | LINE` lines of an output by container,
// and its `NAME * EVENT` lines by container too.
func outputLines(lines []string) (out, events map[string][]string) {
	out, events = map[string][]string{}, map[string][]string{}
	for _, l := range lines {
		if name, text, ok := strings.Cut(l, " | "); ok {
			name = strings.TrimSpace(name)
			out[name] = append(out[name], text)
		} else if name, text, ok := strings.Cut(l, " * "); ok {
			name = strings.TrimSpace(name)
			events[name] = append(events[name], text)
		}
	}
	return out, events
}

func countContaining(lines []string, text string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, text) {
			n++
		}
	}
	return n
}

// TestE2EContainerDirsSpreadOverExt4 checks the containers' directories:
// each holds its layer, the overlay's work directory and its log; their
// parent carries ext4's top-directory mark (chattr +T), so that each goes
// to a block group of ext4's choosing, and they do not; and a second up
// names them anew, so that ext4 does not choose the groups the first
// one's freed. On a state directory elsewhere than ext2/3/4 no mark is
// possible.
func TestE2EContainerDirsSpreadOverExt4(t *testing.T) {
	e := newEnv(t)
	e.manifest(`
name: top
containers:
  c:
    rootfs: {{rootfs}}
    command: [sleep, "1000"]
`)
	var st unix.Statfs_t
	if err := unix.Statfs(e.StateDir, &st); err != nil {
		t.Fatal(err)
	}
	const ext4SuperMagic, topDirFlag = 0xef53, 0x00020000 // linux/magic.h, linux/fs.h
	containers := filepath.Join(e.StateDir, "top", "containers")
	var seen []string
	for range 2 {
		e.MustRun("up", "-d")
		matches, err := filepath.Glob(filepath.Join(containers, "c.*"))
		if err != nil || len(matches) != 1 {
			t.Fatalf("directories of container c: %v (%v), want one", matches, err)
		}
		dir := matches[0]
		if slices.Contains(seen, dir) {
			t.Errorf("a second up named container c's directory %s again", dir)
		}
		seen = append(seen, dir)
		for _, name := range []string{"layer", "work", "c.log"} {
			if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
				t.Errorf("container c's directory: %v", err)
			}
		}
		for dir, want := range map[string]bool{containers: st.Type == ext4SuperMagic, dir: false} {
			fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			flags, err := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
			unix.Close(fd)
			if got := err == nil && flags&topDirFlag != 0; got != want {
				t.Errorf("%s: top-directory mark %v, want %v (flags %#x, %v)", dir, got, want, flags, err)
			}
		}
		e.DownLeavingNothing()
	}
}

func TestE2ELogsKeepEveryLineOnce(t *testing.T) {
	e := newEnv(t)
	const containers, lines = 5, 2000
	var m strings.Builder
	m.WriteString("name: lines\ncontainers:\n")
	for c := 1; c <= containers; c++ {
		// Each line is padded so that the five containers together write
		// a few megabytes through their pipes at once.
		fmt.Fprintf(&m, `  c%d:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "i=1; while [ $$i -le %d ]; do echo \"c%d line $$i %s\"; i=$((i+1)); done; printf 'c%d last'"]
`, c, lines, c, strings.Repeat("x", 200), c)
	}
	e.manifest(m.String())
	want := func(c int) []string {
		var w []string
		for i := 1; i <= lines; i++ {
			w = append(w, fmt.Sprintf("c%d line %d %s", c, i, strings.Repeat("x", 200)))
		}
		return append(w, fmt.Sprintf("c%d last", c))
	}
	check := func(what string, stdout string) {
		t.Helper()
		out, events := outputLines(strings.Split(strings.TrimSuffix(stdout, "\n"), "\n"))
		for c := 1; c <= containers; c++ {
			name := fmt.Sprintf("c%d", c)
			if got, w := out[name], want(c); !slices.Equal(got, w) {
				t.Errorf("%s: container %s: %d lines, want %d in order; first difference at %d", what, name, len(got), len(w), firstDiff(got, w))
			}
			if countContaining(events[name], "exited with status 0") != 1 {
				t.Errorf("%s: container %s: events %q", what, name, events[name])
			}
		}
	}

	up := e.Run("up")
	if up.Code != 0 {
		t.Fatalf("up: exit %d\n%s", up.Code, up.Stderr)
	}
	t.Logf("up of %d containers writing %d lines each took %v", containers, lines, up.Took)
	check("live output of up", up.Stdout)

	// The stack has ended; its logs stay until down.
	check("stack logs", e.MustRun("logs").Stdout)
	tail := e.MustRun("logs", "-n", "2", "c2").Stdout
	if tail != "c2 | c2 last\nc2 * exited with status 0\n" {
		t.Errorf("logs -n 2 c2 printed %q", tail)
	}
	stamped := strings.SplitN(e.MustRun("logs", "-t", "c3").Stdout, "\n", 3)
	if !regexp.MustCompile(`^c3 \* \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z started \(pid \d+\)$`).MatchString(stamped[0]) ||
		!strings.HasPrefix(stamped[1], "c3 | 2") || !strings.HasSuffix(stamped[1], " c3 line 1 "+strings.Repeat("x", 200)) {
		t.Errorf("logs -t c3 begins %q", stamped[:2])
	}
	for name, row := range e.PS() {
		if row.State != "exited" || row.ExitCode == nil || *row.ExitCode != 0 || row.Pid != 0 {
			t.Errorf("ps: %s: %+v, want exited with 0", name, row)
		}
	}
	e.DownLeavingNothing()
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestE2EOOMRestartsThenGivesUp is the seed's experiment: a shell that
// reads 20 kB blocks of random data into a variable, under a 2 MB limit.
func TestE2EOOMRestartsThenGivesUp(t *testing.T) {
	e := newEnv(t)
	e.manifest(`
name: oom
containers:
  mem:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "random=\"$(dd if=/dev/urandom ibs=20000)\""]
    memory: 2000000
    restart: {policy: on-oom, max_retries: 2}
`)
	up := e.Run("up")
	if up.Code != 1 {
		t.Fatalf("up: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", up.Code, up.Stdout, up.Stderr)
	}
	_, events := outputLines(strings.Split(up.Stdout, "\n"))
	ev := events["mem"]
	if countContaining(ev, "OOM-killed at ") != 3 || countContaining(ev, "restarting in") != 2 ||
		countContaining(ev, "started (pid") != 3 || countContaining(ev, "gave up after 2 restarts") != 1 {
		t.Errorf("events:\n%s", strings.Join(ev, "\n"))
	}
	// Each run's kill is told before its end, as the README shows it.
	killTold := false
	for _, l := range ev {
		switch {
		case strings.Contains(l, "OOM-killed at "):
			killTold = true
		case strings.Contains(l, "exited with status"):
			if !killTold {
				t.Errorf("%q came before its run's OOM-killed at event:\n%s", l, strings.Join(ev, "\n"))
			}
			killTold = false
		}
	}
	if !strings.Contains(up.Stderr, `container "mem"`) || !strings.Contains(up.Stderr, "gave up after 2 restarts") {
		t.Errorf("up said: %s", up.Stderr)
	}
	mem := e.PS()["mem"]
	if mem.State != "exited" || mem.Restarts != 2 || mem.OOMKills != 3 || mem.ExitCode == nil || *mem.ExitCode == 0 ||
		mem.MemoryLimit != 2000000 || mem.Pid != 0 {
		t.Errorf("ps: %+v", mem)
	}
	e.DownLeavingNothing()
}

func TestE2ERestartPolicies(t *testing.T) {
	e := newEnv(t)
	e.manifest(`
name: policies
containers:
  flaky:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "echo run; exit 3"]
    restart: {policy: on-failure, max_retries: 3, backoff: 200ms, max_backoff: 500ms}
  oomonly:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "echo plain failure; exit 4"]
    restart: on-oom
  fine:
    rootfs: {{rootfs}}
    command: ["true"]
    restart: on-failure
`)
	up := e.Run("up")
	if up.Code != 1 {
		t.Fatalf("up: exit %d, want 1\n%s", up.Code, up.Stderr)
	}
	out, events := outputLines(strings.Split(up.Stdout, "\n"))
	if got := out["flaky"]; len(got) != 4 {
		t.Errorf("flaky ran %d times, want 4: %q", len(got), got)
	}
	for _, want := range []string{
		"restarting in 200ms (attempt 1 of 3)",
		"restarting in 400ms (attempt 2 of 3)",
		"restarting in 500ms (attempt 3 of 3)",
		"gave up after 3 restarts",
	} {
		if countContaining(events["flaky"], want) != 1 {
			t.Errorf("flaky: no event %q in\n%s", want, strings.Join(events["flaky"], "\n"))
		}
	}
	if countContaining(events["oomonly"], "restarting") != 0 || countContaining(events["fine"], "restarting") != 0 {
		t.Errorf("restarted what its policy does not restart:\n%s", up.Stdout)
	}
	ps := e.PS()
	for name, want := range map[string][2]int{"flaky": {3, 3}, "oomonly": {0, 4}, "fine": {0, 0}} {
		row := ps[name]
		if row.State != "exited" || row.Restarts != want[0] || row.ExitCode == nil || *row.ExitCode != want[1] {
			t.Errorf("ps: %s: %+v, want %d restarts and exit code %d", name, row, want[0], want[1])
		}
	}

	// The delays, measured from the persisted events' times: a restart
	// never comes before its delay; the upper bound only catches a hang.
	var ended time.Time
	var gaps []time.Duration
	for _, l := range strings.Split(e.MustRun("logs", "-t", "flaky").Stdout, "\n") {
		stamp, text, ok := strings.Cut(strings.TrimPrefix(l, "flaky * "), " ")
		if !ok || !strings.HasPrefix(l, "flaky * ") {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, stamp)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(text, "exited"):
			ended = at
		case strings.HasPrefix(text, "started") && !ended.IsZero():
			gaps = append(gaps, at.Sub(ended))
		}
	}
	t.Logf("flaky: delays between exit and restart %v (backoff 200ms, 400ms, 500ms)", gaps)
	for i, want := range []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 500 * time.Millisecond} {
		if i >= len(gaps) || gaps[i] < want || gaps[i] > want+30*time.Second {
			t.Errorf("restart %d came after %v, want %v or a little more", i+1, gaps, want)
		}
	}
	e.DownLeavingNothing()
}

func TestE2EAlwaysRestartsUntilDown(t *testing.T) {
	e := newEnv(t)
	e.manifest(`
name: always
containers:
  blink:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "echo run; sleep 0.1"]
    restart: {policy: always, backoff: 50ms, max_backoff: 100ms}
`)
	e.MustRun("up", "-d")
	e.WaitFor("three restarts", func() bool { return e.PS()["blink"].Restarts >= 3 })
	down := e.MustRun("down")
	t.Logf("down of a restarting container took %v", down.Took)
	e.AssertNothingLeft()
	if rows := e.MustRun("ps", "--format", "json").Stdout; rows != "[]\n" {
		t.Errorf("ps after down: %s", rows)
	}
}

func TestE2EDetachPsAndDownFromElsewhere(t *testing.T) {
	e := newEnv(t)
	e.manifest(`
name: demo
containers:
  web:
    rootfs: {{rootfs}}
    command: sleep 1000
    memory: 64M
  api:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "trap 'exit 0' TERM; echo ready; while :; do sleep 1; done"]
    depends_on: [web]
`)
	up := e.MustRun("up", "-d")
	t.Logf("up -d of 2 containers took %v", up.Took)
	ps := e.PS()
	for _, name := range []string{"web", "api"} {
		row := ps[name]
		if row.State != "running" || row.Pid <= 0 || row.ExitCode != nil {
			t.Fatalf("ps: %s: %+v, want running", name, row)
		}
		cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", row.Pid))
		if err != nil || !strings.Contains(string(cg), "/"+e.CgroupParent+"/demo/"+name+"\n") {
			t.Errorf("%s (pid %d) is not in its cgroup: %s %v", name, row.Pid, cg, err)
		}
	}
	if ps["web"].MemoryLimit != 64<<20 || ps["web"].MemoryUsage <= 0 {
		t.Errorf("ps: web memory %d of %d", ps["web"].MemoryUsage, ps["web"].MemoryLimit)
	}
	table := e.MustRun("ps").Stdout
	if !strings.HasPrefix(table, "NAME") || !regexp.MustCompile(`(?m)^web +running +\d+ +0 +0 +\S+ / 64\.0MiB +\S+ +\S+ +up `).MatchString(table) {
		t.Errorf("ps table:\n%s", table)
	}

	elsewhere := t.TempDir()
	// api may not have written its line yet when up -d returns.
	e.WaitFor("api's line in logs -p demo from elsewhere", func() bool {
		logs := e.RunIn(elsewhere, "-p", "demo", "logs", "api")
		return logs.Code == 0 && strings.Contains(logs.Stdout, "api | ready")
	})
	down := e.RunIn(elsewhere, "-p", "demo", "down")
	if down.Code != 0 {
		t.Fatalf("down -p demo: exit %d: %s", down.Code, down.Stderr)
	}
	t.Logf("down of 2 containers through their supervisor took %v", down.Took)
	e.AssertNothingLeft()
	for _, args := range [][]string{{"-p", "demo", "down"}, {"-p", "nosuch", "down"}} {
		if again := e.RunIn(elsewhere, args...); again.Code != 0 || again.Stderr != "" {
			t.Errorf("%v: exit %d: %s", args, again.Code, again.Stderr)
		}
	}
	e.MustRun("down")
}

func TestE2EDownAfterSupervisorKilled(t *testing.T) {
	e := newEnv(t)
	// orphan has no pid namespace: the sleep it starts in the background
	// outlives it, and only the cgroup kill of down can reach it.
	e.manifest(`
name: killed
containers:
  web:
    rootfs: {{rootfs}}
    command: sleep 1000
  orphan:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "sleep 1000 & exec sleep 1001"]
    namespaces: [mount]
  nobody:
    rootfs: {{rootfs}}
    command: sleep 1000
    user: "65534:65534"
`)
	e.MustRun("up", "-d")
	ps := e.PS()
	sup := e.supervisorPid("killed")
	if !strings.Contains(string(mustRead(t, fmt.Sprintf("/proc/%d/environ", sup))), "STACK_STATE_DIR="+e.StateDir) {
		t.Fatalf("pid %d from the state is not this test's supervisor", sup)
	}
	if err := syscall.Kill(sup, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Without the supervisor, nothing would capture the containers'
	// output: they are stopped with it (see doc.go).
	// (A user other than root checks that the init's change of
	// credentials, which clears the parent-death signal, kept it.)
	died := e.Eventually(func() bool {
		return !alive(ps["web"].Pid) && !alive(ps["orphan"].Pid) && !alive(ps["nobody"].Pid)
	})
	if !died {
		t.Error("the containers outlived their supervisor: runtime.Start must pass Spec.ParentDeathSignal " +
			"to SysProcAttr.Pdeathsig, and the init must set it again after changing its credentials")
	}
	if e.Run("ps").Code != 0 {
		t.Error("ps fails once the supervisor is gone")
	}
	if got := e.PS()["web"].State; got != "stopped" {
		t.Errorf("ps after the supervisor was killed: web is %s, want stopped", got)
	}
	if len(e.LeftCgroups()) == 0 {
		t.Fatal("no cgroup left before down: the test checks nothing")
	}
	down := e.MustRun("down")
	t.Logf("down without a supervisor took %v", down.Took)
	e.AssertNothingLeft()
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(b), ") Z ")
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestE2EStartFailureLeavesNothing(t *testing.T) {
	e := newEnv(t)
	e.manifest(`
name: broken
containers:
  good:
    rootfs: {{rootfs}}
    command: sleep 1000
  bad:
    rootfs: {{rootfs}}
    command: /bin/nope
    depends_on: [good]
`)
	for _, args := range [][]string{{"up"}, {"up", "-d"}} {
		r := e.Run(args...)
		if r.Code != 1 || !strings.Contains(r.Stderr, `container "bad"`) || !strings.Contains(r.Stderr, "/bin/nope") {
			t.Errorf("%v: exit %d, stderr:\n%s", args, r.Code, r.Stderr)
		}
		e.AssertNothingLeft()
	}
}

// TestE2EInvalidManifestDetachedLeavesNothing: up -d starts the background
// supervisor's process before it reads the manifest; an invalid manifest
// (exit 2) or configuration ends that process before up -d returns, with
// nothing made.
func TestE2EInvalidManifestDetachedLeavesNothing(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, manifest, env, want string
	}{
		{"manifest", "name: bad\ncontainers:\n  a:\n    rootfs: {{rootfs}}\n    command: sleep 1000\n    memory: 64X\n", "", "is not a size"},
		{"environment", "name: bad\ncontainers:\n  a:\n    rootfs: {{rootfs}}\n    command: sleep 1000\n", "STACK_UNPACK_LIMIT=lots", "STACK_UNPACK_LIMIT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.manifest(tc.manifest)
			if tc.env != "" {
				e.ExtraEnv = []string{tc.env}
				defer func() { e.ExtraEnv = nil }()
			}
			for _, args := range [][]string{{"up", "-d"}, {"up", "--wait"}} {
				r := e.Run(args...)
				if r.Code != 2 || !strings.Contains(r.Stderr, tc.want) {
					t.Errorf("%v: exit %d, want 2 and %q; stderr:\n%s", args, r.Code, tc.want, r.Stderr)
				}
				// At once: up -d waits for the process it started to end.
				for _, p := range e.Processes() {
					t.Errorf("%v: process %d (%s) outlived up", args, p.Pid, p.Cmdline)
				}
				if ents, _ := os.ReadDir(e.StateDir); len(ents) > 0 {
					t.Errorf("%v: the state directory holds %v", args, ents)
				}
			}
		})
	}
}

func TestE2ESecondUpRefused(t *testing.T) {
	e := newEnv(t)
	e.manifest(`
name: solo
containers:
  web:
    rootfs: {{rootfs}}
    command: sleep 1000
`)
	e.MustRun("up", "-d")
	pid := e.PS()["web"].Pid
	for _, args := range [][]string{{"up"}, {"up", "-d"}} {
		r := e.Run(args...)
		if r.Code != 1 || !strings.Contains(r.Stderr, `stack "solo" is already running`) {
			t.Errorf("second %v: exit %d, stderr:\n%s", args, r.Code, r.Stderr)
		}
	}
	if row := e.PS()["web"]; row.State != "running" || row.Pid != pid {
		t.Errorf("the running stack changed: %+v, was pid %d", row, pid)
	}
	e.DownLeavingNothing()
}

func TestE2ECtrlC(t *testing.T) {
	const manifest = `
name: ctrlc
containers:
  polite:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "trap 'echo got TERM; exit 0' TERM; echo ready; while :; do sleep 1; done"]
    depends_on: [stubborn]
  stubborn:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "trap 'echo got TERM' TERM; echo ready; while :; do sleep 1; done"]
    stop_timeout: %s
  plain:
    rootfs: {{rootfs}}
    command: sleep 1000
`
	// The lines come in any order, so readiness is judged on the whole
	// output so far.
	ready := func(e *env, b *stacktest.Background) {
		e.WaitFor("every container ready", func() bool {
			out, events := outputLines(b.Lines())
			return len(out["polite"]) == 1 && len(out["stubborn"]) == 1 && countContaining(events["plain"], "started") == 1
		})
	}

	t.Run("graceful", func(t *testing.T) {
		e := newEnv(t)
		e.manifest(fmt.Sprintf(manifest, "2s"))
		up := e.Start("up")
		ready(e, up)
		sent := time.Now()
		if err := up.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		end := up.Wait()
		lines := end.Lines()
		t.Logf("stopping after Ctrl-C took %v (stubborn's stop_timeout is 2s)", time.Since(sent))
		if end.Code != 0 {
			t.Errorf("up after Ctrl-C: exit %d, stderr:\n%s", end.Code, end.Stderr)
		}
		out, events := outputLines(lines)
		if countContaining(out["polite"], "got TERM") != 1 || countContaining(out["stubborn"], "got TERM") != 1 {
			t.Errorf("a container did not get its stop signal:\n%s", strings.Join(lines, "\n"))
		}
		if countContaining(events["stubborn"], "still running after 2s, killing it") != 1 ||
			countContaining(events["plain"], "does not catch SIGTERM, killing it") != 1 ||
			countContaining(events["polite"], "killing") != 0 {
			t.Errorf("events:\n%s", strings.Join(lines, "\n"))
		}
		// polite depends on stubborn, so it stops first; plain depends on
		// nothing and nothing on it, so it stops at once.
		order := func(line string) int {
			return slices.IndexFunc(lines, func(l string) bool { return strings.Contains(strings.Join(strings.Fields(l), " "), line) })
		}
		plain, polite, stubborn := order("plain * stopping"), order("polite | got TERM"), order("stubborn * stopping")
		if plain < 0 || polite < 0 || stubborn < 0 || !(plain < polite && polite < stubborn) {
			t.Errorf("not stopped in reverse dependency order:\n%s", strings.Join(lines, "\n"))
		}
		for name, row := range e.PS() {
			if row.State != "stopped" {
				t.Errorf("ps: %s is %s, want stopped", name, row.State)
			}
		}
		e.DownLeavingNothing()
	})

	t.Run("second signal kills", func(t *testing.T) {
		e := newEnv(t)
		e.manifest(fmt.Sprintf(manifest, "60s"))
		up := e.Start("up")
		ready(e, up)
		if err := up.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		e.WaitFor("stubborn to get its signal", func() bool {
			out, _ := outputLines(up.Lines())
			return countContaining(out["stubborn"], "got TERM") == 1
		})
		if err := up.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		end := up.Wait()
		if end.Code != 0 || countContaining(end.Lines(), "still running after") != 0 {
			t.Errorf("exit %d, output:\n%s", end.Code, end.Stdout)
		}
		// The kill is said in the stream, as every other end is.
		if _, events := outputLines(end.Lines()); countContaining(events["stubborn"], "killing it at once") != 1 {
			t.Errorf("the stream does not say stubborn was killed by the second signal:\n%s", end.Stdout)
		}
		e.DownLeavingNothing()
	})
}

// A signal that reaches a foreground up while it is still starting (a
// Ctrl-C, or the SIGTERM of a down from another terminal) is a stop, as it
// is once every container runs: up stops what it started, removes it all
// and exits 0, saying so. client waits on a check that never ends, so the
// start is still under way when the signal comes.
func TestE2ESignalDuringTheStartIsAStop(t *testing.T) {
	e := newEnv(t)
	e.manifest(`
name: midstart
containers:
  server:
    rootfs: {{rootfs}}
    command: sleep 1000
    healthcheck:
      test: ["CMD-SHELL", "sleep 1000"]
      interval: 1h
      timeout: 1h
      start_interval: 1h
  client:
    rootfs: {{rootfs}}
    command: sleep 1000
    depends_on:
      server: {condition: service_healthy}
`)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		up := e.Start("up")
		e.WaitFor("server to run", func() bool {
			_, events := outputLines(up.Lines())
			return countContaining(events["server"], "started") == 1
		})
		if err := up.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		end := up.Wait()
		if end.Code != 0 || !strings.Contains(end.Stderr, "during the start: stopped what had started") {
			t.Errorf("up after %v during its start: exit %d, stderr:\n%s", sig, end.Code, end.Stderr)
		}
		if _, events := outputLines(end.Lines()); countContaining(events["client"], "started") != 0 {
			t.Errorf("client started although its condition never held:\n%s", end.Stdout)
		}
		e.AssertNothingLeft()
	}
}

func TestE2ELogsFollowAcrossRestartsUntilTheEnd(t *testing.T) {
	e := newEnv(t)
	e.manifest(`
name: follow
containers:
  w:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "echo run; sleep 0.5; exit 1"]
    restart: {policy: on-failure, max_retries: 1, backoff: 100ms}
`)
	e.MustRun("up", "-d")
	logs := e.MustRun("logs", "-f")
	out, events := outputLines(strings.Split(logs.Stdout, "\n"))
	if len(out["w"]) != 2 || countContaining(events["w"], "gave up after 1 restarts") != 1 {
		t.Errorf("logs -f printed:\n%s", logs.Stdout)
	}
	if row := e.PS()["w"]; row.State != "exited" || row.ExitCode == nil || *row.ExitCode != 1 || row.Restarts != 1 {
		t.Errorf("ps: %+v", row)
	}
	e.DownLeavingNothing()
}

func TestE2EUpAgainStartsAfresh(t *testing.T) {
	e := newEnv(t)
	e.manifest(`
name: again
containers:
  once:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "echo hello; exec sleep 1000"]
`)
	// An ended stack: its state and logs stay until down, or until the
	// next up, which starts afresh.
	up := e.Start("up")
	e.WaitFor("once to run", func() bool { return e.PS()["once"].State == "running" })
	if err := up.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if end := up.Wait(); end.Code != 0 {
		t.Fatalf("up after SIGTERM: exit %d", end.Code)
	}
	e.MustRun("up", "-d")
	hellos := func() int { return strings.Count(e.MustRun("logs").Stdout, "once | hello") }
	e.WaitFor("the new run's hello", func() bool { return hellos() > 0 })
	if n := hellos(); n != 1 {
		t.Errorf("logs after a second up hold %d hellos, want the new run's only", n)
	}
	// A stack whose supervisor was killed: the next up cleans up first.
	first := e.PS()["once"].Pid
	if err := syscall.Kill(e.supervisorPid("again"), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e.WaitFor("the supervisor to let go of the stack", func() bool { return e.Run("up", "-d").Code == 0 })
	if row := e.PS()["once"]; row.State != "running" || row.Pid == first || row.Restarts != 0 {
		t.Errorf("after up over a killed supervisor: %+v (the first run was pid %d)", row, first)
	}
	e.DownLeavingNothing()
}

// TestE2EFiftyContainers measures up -d and down of 50 containers and the
// supervisor's memory with them running.
func TestE2EFiftyContainers(t *testing.T) {
	e := newEnv(t)
	var m strings.Builder
	m.WriteString("name: fifty\ncontainers:\n")
	for i := 1; i <= 50; i++ {
		fmt.Fprintf(&m, "  c%02d:\n    rootfs: {{rootfs}}\n    command: sleep 1000\n", i)
	}
	e.manifest(m.String())
	up := e.MustRun("up", "-d")
	running := 0
	for _, row := range e.PS() {
		if row.State == "running" && alive(row.Pid) {
			running++
		}
	}
	if running != 50 {
		t.Errorf("%d of 50 containers running after up -d", running)
	}
	rss := "unknown"
	for _, l := range strings.Split(string(mustRead(t, fmt.Sprintf("/proc/%d/status", e.supervisorPid("fifty")))), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			rss = strings.TrimSpace(v)
		}
	}
	down := e.MustRun("down")
	t.Logf("50 containers: up -d %v, down %v; supervisor VmRSS with 50 running: %s", up.Took, down.Took, rss)
	e.AssertNothingLeft()
}

// TestE2EDownKillsAStuckSupervisor stops the supervisor (SIGSTOP), so that
// it holds the lock but never answers: down must still get rid of the
// stack, once the grace periods and some slack have passed.
func TestE2EDownKillsAStuckSupervisor(t *testing.T) {
	e := newEnv(t)
	e.manifest(`
name: stuck
containers:
  web:
    rootfs: {{rootfs}}
    command: sleep 1000
    stop_timeout: 1s
`)
	e.MustRun("up", "-d")
	sup := e.supervisorPid("stuck")
	if err := syscall.Kill(sup, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	down := e.Run("down")
	if down.Code != 0 {
		syscall.Kill(sup, syscall.SIGKILL)
		t.Fatalf("down: exit %d: %s", down.Code, down.Stderr)
	}
	t.Logf("down of a stuck supervisor took %v", down.Took)
	e.AssertNothingLeft()
}

// TestE2EDetachedSupervisorStartsWithItsTableGrown checks that up -d
// hands its supervisor a descriptor table grown before the execve (so its
// start never waits for the kernel to grow it) and that the supervisor
// has closed the spare descriptor that grew it.
func TestE2EDetachedSupervisorStartsWithItsTableGrown(t *testing.T) {
	e := newEnv(t)
	e.manifest(`
name: table
containers:
  one:
    rootfs: {{rootfs}}
    command: sleep 1000
`)
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	// As supervisor/fdtable.go: the last of 1024, or of the limit.
	spare := int(min(1024, lim.Cur)) - 1
	if spare < 64 {
		t.Skipf("an open files limit of %d leaves no room for a spare descriptor", lim.Cur)
	}
	e.MustRun("up", "-d")
	pid := e.supervisorPid("table")
	var size int
	for _, l := range strings.Split(string(mustRead(t, fmt.Sprintf("/proc/%d/status", pid))), "\n") {
		if v, ok := strings.CutPrefix(l, "FDSize:"); ok {
			size, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	// One container alone would grow the table to 128 at most.
	if size <= spare {
		t.Errorf("the supervisor's table holds %d descriptors, want more than %d", size, spare)
	}
	if _, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, spare)); err == nil {
		t.Errorf("the supervisor still holds the spare descriptor %d", spare)
	}
	e.MustRun("down")
}

// TestE2ERestartAfterItsStragglersWereKilled restarts a container without
// a pid namespace whose runs leave a process behind, so that the end of
// each run must kill what is left in its cgroup. Every run must still
// run: on some kernels (Debian's 6.1 cloud kernel), once a cgroup v2 has
// been killed through cgroup.kill, each child later cloned into it is
// killed at birth, and the restarts died of SIGKILL before their first
// line.
func TestE2ERestartAfterItsStragglersWereKilled(t *testing.T) {
	e := newEnv(t)
	e.manifest(`
name: stragglers
containers:
  leaver:
    rootfs: {{rootfs}}
    namespaces: [mount, uts, ipc, net]
    command: ["sh", "-c", "sleep 1000 & echo run; exit 3"]
    restart: {policy: on-failure, max_retries: 2, backoff: 100ms}
`)
	up := e.Run("up")
	if up.Code != 1 {
		t.Fatalf("up: exit %d, want 1\n%s%s", up.Code, up.Stdout, up.Stderr)
	}
	out, events := outputLines(strings.Split(up.Stdout, "\n"))
	if got := out["leaver"]; len(got) != 3 {
		t.Errorf("leaver printed %d times, want once in each of its 3 runs: %q\n%s", len(got), got, strings.Join(events["leaver"], "\n"))
	}
	if n := countContaining(events["leaver"], "exited with status 3"); n != 3 {
		t.Errorf("leaver: %d runs exited with status 3, want 3:\n%s", n, strings.Join(events["leaver"], "\n"))
	}
	e.DownLeavingNothing()
}
