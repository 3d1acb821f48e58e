package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/stack-containers/stack/internal/testenv"
)

// execStack is a running stack with a container c to exec into and a
// container done that has exited.
func execStack(t *testing.T) *env {
	e := newEnv(t)
	e.manifest(`
name: ex
containers:
  c:
    rootfs: {{rootfs}}
    command: sleep 1000
    env: {GREETING: hello}
    memory: 64M
  done:
    rootfs: {{rootfs}}
    command: "true"
`)
	e.MustRun("up", "-d")
	t.Cleanup(func() { e.Run("down") })
	e.WaitFor("done to exit", func() bool { return e.PS()["done"].State == "exited" })
	return e
}

func TestExecRunsInTheContainer(t *testing.T) {
	e := execStack(t)
	for _, tc := range []struct {
		args []string
		code int
		out  string // the whole of stdout, or a regexp when it starts with ^
	}{
		{[]string{"c", "hostname"}, 0, "c\n"},
		{[]string{"c", "cat", "/proc/1/cmdline"}, 0, "sleep\x001000\x00"},
		{[]string{"-u", "nobody", "c", "id"}, 0, "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n"},
		{[]string{"-u", "1000:1001", "c", "id", "-u"}, 0, "1000\n"},
		{[]string{"-u", "1000:1001", "c", "id", "-g"}, 0, "1001\n"},
		{[]string{"c", "id", "-u"}, 0, "0\n"},
		{[]string{"c", "sh", "-c", "echo $GREETING"}, 0, "hello\n"},
		{[]string{"-e", "GREETING=bye", "-e", "OTHER=x", "c", "sh", "-c", "echo $GREETING $OTHER"}, 0, "bye x\n"},
		{[]string{"-w", "/tmp", "c", "pwd"}, 0, "/tmp\n"},
		{[]string{"c", "pwd"}, 0, "/\n"},
		{[]string{"c", "true"}, 0, ""},
		{[]string{"c", "sh", "-c", "exit 3"}, 3, ""},
		{[]string{"c", "/etc/passwd"}, 126, ""},
		{[]string{"c", "nope"}, 127, ""},
		{[]string{"c", "/bin/nope"}, 127, ""},
		{[]string{"-w", "/nope", "c", "true"}, 126, ""},
		// Flags end at the container: -l is ls's.
		{[]string{"c", "ls", "-ld", "/"}, 0, `^d\S+ +\d+ root +root `},
		// Only the container's own processes: its PID 1, and ps.
		{[]string{"c", "ps", "-o", "pid,comm"}, 0, `^PID +COMMAND\n +1 sleep\n +\d+ ps\n$`},
	} {
		r := e.Run(append([]string{"exec"}, tc.args...)...)
		ok := r.Stdout == tc.out
		if strings.HasPrefix(tc.out, "^") {
			ok = regexp.MustCompile(tc.out).MatchString(r.Stdout)
		}
		if r.Code != tc.code || !ok {
			t.Errorf("exec %q: exit %d, stdout %q, stderr %q; want exit %d, stdout %q", tc.args, r.Code, r.Stdout, r.Stderr, tc.code, tc.out)
		}
		if tc.code >= 126 && !strings.Contains(r.Stderr, `stack: error: container "c": `) {
			t.Errorf("exec %q: stderr %q, want the container and the cause", tc.args, r.Stderr)
		}
	}
	r := e.Run("exec", "done", "true")
	if r.Code != 1 || !strings.Contains(r.Stderr, `stack: error: container "done" is not running`) {
		t.Errorf("exec into an exited container: exit %d, stderr %q", r.Code, r.Stderr)
	}
	r = e.Run("exec", "nosuch", "true")
	if r.Code != 1 || !strings.Contains(r.Stderr, `no container "nosuch"`) {
		t.Errorf("exec into a container that does not exist: exit %d, stderr %q", r.Code, r.Stderr)
	}
}

func TestExecStdinAndTerminal(t *testing.T) {
	e := execStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cmd := e.Command(ctx, e.Dir, "exec", "-T", "c", "cat")
	cmd.Stdin = strings.NewReader("hi\n")
	out, err := cmd.Output()
	if err != nil || string(out) != "hi\n" {
		t.Errorf("echo hi | stack exec -T c cat: %q, %v", out, err)
	}

	// A terminal when stdin is one: the container's own /dev/pts, its
	// size the caller's, and the command's exit status.
	cmd = e.Command(ctx, e.Dir, "exec", "c", "sh", "-c", "tty; stty size; exit 4")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 33, Cols: 77})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var got bytes.Buffer
	io.Copy(&got, tty) // ends with EIO when the command is gone
	err = cmd.Wait()
	var exit interface{ ExitCode() int }
	if !errors.As(err, &exit) || exit.ExitCode() != 4 {
		t.Errorf("exec in a terminal: %v, want exit status 4", err)
	}
	if !regexp.MustCompile(`^/dev/pts/\d+\r\n33 77\r\n$`).MatchString(got.String()) {
		t.Errorf("exec in a terminal wrote %q, want its /dev/pts/N and size 33 77", got.String())
	}

	// -T: no terminal even when stdin is one.
	cmd = e.Command(ctx, e.Dir, "exec", "-T", "c", "tty")
	tty2, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer tty2.Close()
	got.Reset()
	io.Copy(&got, tty2)
	cmd.Wait()
	if !strings.Contains(got.String(), "not a tty") {
		t.Errorf("exec -T in a terminal: tty said %q, want not a tty", got.String())
	}
}

// TestExecJoinsTheContainer checks from the host that an exec'd process is
// in the container's cgroup and pid namespace, and dies with it.
func TestExecJoinsTheContainer(t *testing.T) {
	e := execStack(t)
	init := e.PS()["c"].Pid
	bg := e.Start("exec", "-T", "c", "sleep", "300")
	procs := filepath.Join(e.cgroupDir(t), e.CgroupParent, "ex", "c", "cgroup.procs")
	var pid int
	e.WaitFor("the exec'd sleep in the container's cgroup", func() bool {
		b, _ := os.ReadFile(procs)
		for _, f := range strings.Fields(string(b)) {
			if p, _ := strconv.Atoi(f); p != init && p != 0 {
				if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p)); string(comm) == "sleep\n" {
					pid = p
				}
			}
		}
		return pid != 0
	})
	ns := func(pid int) string {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if ns(pid) != ns(init) {
		t.Errorf("exec'd process in pid namespace %s, the container's is %s", ns(pid), ns(init))
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if m := regexp.MustCompile(`(?m)^NSpid:\s+\d+\s+(\d+)$`).FindStringSubmatch(string(status)); m == nil || m[1] == "1" {
		t.Errorf("exec'd process: want a pid other than 1 in the container's namespace: %s", status)
	}
	e.MustRun("down")
	r := bg.Wait()
	if r.Code != 128+9 {
		t.Errorf("exec'd process when its container was stopped: exit %d, want 137 (killed)", r.Code)
	}
}

// cgroupDir is where the container cgroups' processes are listed: the
// unified hierarchy, or the pids controller's on v1.
func (e *env) cgroupDir(t *testing.T) string {
	for _, d := range []string{"/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(d, e.CgroupParent)); err == nil {
			return d
		}
	}
	t.Fatalf("no cgroup hierarchy holds %s", e.CgroupParent)
	return ""
}

func TestExecPassesSignalsAndResizes(t *testing.T) {
	e := execStack(t)
	bg := e.Start("exec", "-T", "c", "sh", "-c", `trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.1; done`)
	e.WaitFor("the command to be ready", func() bool { return slices.Contains(bg.Lines(), "ready") })
	if err := bg.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if r := bg.Wait(); r.Code != 7 || !strings.Contains(r.Stdout, "got TERM") {
		t.Errorf("SIGTERM to stack exec: exit %d, stdout %q; want it passed on (exit 7)", r.Code, r.Stdout)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := e.Command(ctx, e.Dir, "exec", "c", "sh", "-c", `stty size; while [ "$(stty size)" = "33 77" ]; do sleep 0.1; done; stty size`)
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 33, Cols: 77})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var got lockedOutput
	copied := make(chan struct{})
	go func() { io.Copy(&got, tty); close(copied) }()
	e.WaitFor("the first size", func() bool { return strings.Contains(got.String(), "33 77") })
	if err := pty.Setsize(tty, &pty.Winsize{Rows: 40, Cols: 100}); err != nil {
		t.Fatal(err)
	}
	<-copied
	if err := cmd.Wait(); err != nil {
		t.Errorf("exec after a resize: %v", err)
	}
	if !strings.HasSuffix(got.String(), "40 100\r\n") {
		t.Errorf("after the resize the command saw %q, want the new size 40 100", got.String())
	}
}

// lockedOutput is a buffer one goroutine writes while the test reads it.
type lockedOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedOutput) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedOutput) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestExecIsConfinedAsPID1 compares what the kernel says of an exec'd
// process's confinement with the container's PID 1: the capabilities
// (changed by cap_add and cap_drop), no_new_privs and the seccomp filter.
func TestExecIsConfinedAsPID1(t *testing.T) {
	e := newEnv(t)
	e.manifest(`
name: confined
containers:
  c:
    rootfs: {{rootfs}}
    command: sleep 1000
    cap_add: [NET_ADMIN]
    cap_drop: [CHOWN]
`)
	e.MustRun("up", "-d")
	t.Cleanup(func() { e.Run("down") })
	fields := regexp.MustCompile(`(?m)^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|Seccomp_filters):.*$`)
	pid1 := fields.FindAllString(e.MustRun("exec", "c", "cat", "/proc/1/status").Stdout, -1)
	self := fields.FindAllString(e.MustRun("exec", "c", "cat", "/proc/self/status").Stdout, -1)
	if len(pid1) < 7 || !slices.Equal(pid1, self) {
		t.Errorf("exec'd process:\n%s\nthe container's PID 1:\n%s", strings.Join(self, "\n"), strings.Join(pid1, "\n"))
	}
	if !slices.Contains(self, "Seccomp:\t2") || !slices.Contains(self, "NoNewPrivs:\t1") {
		t.Errorf("exec'd process without a seccomp filter or no_new_privs:\n%s", strings.Join(self, "\n"))
	}
	// Under -u the capabilities go, as for a non-root PID 1.
	if out := e.MustRun("exec", "-u", "nobody", "c", "grep", "CapEff", "/proc/self/status").Stdout; out != "CapEff:\t0000000000000000\n" {
		t.Errorf("exec -u nobody: %q, want no effective capabilities", out)
	}
}

// TestSupplementaryGroups: a container's program, `stack exec` and its
// health check get the groups Docker gives them from the container's own
// /etc/group: the primary group, and, for a user of /etc/passwd named
// without a group, every group whose member list names it.
func TestSupplementaryGroups(t *testing.T) {
	e := newEnv(t)
	rootfs := testenv.NewBusyboxRootfs(t)
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/:/bin/sh\n",
		"etc/group":  "root:x:0:\nwheel:x:10:root\naudio:x:63:app\nvideo:x:44:other,app\nstaff:x:50:\napp:x:1000:\nbroken:x:99\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(rootfs, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.manifest(fmt.Sprintf(`
name: groups
containers:
  app:
    rootfs: %[1]s
    command: sleep 1000
    user: app
    healthcheck:
      test: [CMD, grep, -qxE, "Groups:[[:space:]]+44 63 1000 ?", /proc/self/status]
      interval: 100ms
      retries: 1
  root:
    rootfs: %[1]s
    command: sleep 1000
    user: "0"
  numeric:
    rootfs: %[1]s
    command: sleep 1000
    user: "1234"
  default:
    rootfs: %[1]s
    command: sleep 1000
  staffed:
    rootfs: %[1]s
    command: sleep 1000
    user: app:staff
`, rootfs))
	// --wait leaves the stack up when a check fails.
	t.Cleanup(func() { e.Run("down") })
	if r := e.Run("up", "--wait"); r.Code != 0 {
		t.Errorf("up --wait (app's health check looks at its groups): exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	groups := func(args ...string) string {
		r := e.Run(append([]string{"exec"}, args...)...)
		for _, l := range strings.Split(r.Stdout, "\n") {
			if rest, ok := strings.CutPrefix(l, "Groups:"); ok && r.Code == 0 {
				return strings.Join(strings.Fields(rest), " ")
			}
		}
		t.Errorf("exec %q: exit %d, stdout %q, stderr %q", args, r.Code, r.Stdout, r.Stderr)
		return ""
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		// The program, PID 1, and a process exec'd as the container's
		// user, as a health check is.
		{[]string{"app", "cat", "/proc/1/status"}, "44 63 1000"},
		{[]string{"app", "cat", "/proc/self/status"}, "44 63 1000"},
		// Root is a member of wheel.
		{[]string{"root", "cat", "/proc/1/status"}, "0 10"},
		{[]string{"root", "cat", "/proc/self/status"}, "0 10"},
		// A uid without an entry has its gid, 0, only.
		{[]string{"numeric", "cat", "/proc/1/status"}, "0"},
		// A rootfs's default user is 0:0, an explicit group: the only one.
		{[]string{"default", "cat", "/proc/1/status"}, "0"},
		// So is a manifest's, for PID 1 and what is exec'd as it.
		{[]string{"staffed", "cat", "/proc/1/status"}, "50"},
		{[]string{"staffed", "cat", "/proc/self/status"}, "50"},
		// -u looks the user up in the container it enters.
		{[]string{"-u", "app", "root", "cat", "/proc/self/status"}, "44 63 1000"},
		{[]string{"-u", "1000", "root", "cat", "/proc/self/status"}, "44 63 1000"},
		{[]string{"-u", "root", "app", "cat", "/proc/self/status"}, "0 10"},
		{[]string{"-u", "app:staff", "root", "cat", "/proc/self/status"}, "50"},
		{[]string{"-u", "1234", "app", "cat", "/proc/self/status"}, "0"},
		{[]string{"-u", "1234:77", "app", "cat", "/proc/self/status"}, "77"},
	} {
		if got := groups(tc.args...); got != tc.want {
			t.Errorf("exec %q: Groups: %q, want %q", tc.args, got, tc.want)
		}
	}
	if h := e.PS()["app"].Health; h != "healthy" {
		t.Errorf("app's health is %q, want healthy", h)
	}
}
