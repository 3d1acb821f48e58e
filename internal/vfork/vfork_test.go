package vfork

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/busybox"
	"github.com/stack-containers/stack/internal/linux"
	"github.com/stack-containers/stack/internal/testenv"
)

// shell is the argv prefix of a POSIX shell: the host's, or busybox's.
func shell(t *testing.T) (path string, argv []string) {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err == nil {
		return "/bin/sh", []string{"sh"}
	}
	bb, err := busybox.Path()
	if err != nil {
		testenv.SkipOrFail(t, "no shell: no /bin/sh, and "+err.Error())
	}
	return bb, []string{"sh", "sh"}
}

// execShell makes p execute script with the shell.
func execShell(t *testing.T, p *Program, script string) {
	t.Helper()
	path, argv := shell(t)
	p.Exec(path, append(argv, "-c", script), []string{"PATH=/usr/bin:/bin:/usr/sbin:/sbin"})
}

// start runs p.Start on a locked thread, as a caller must.
func start(p *Program, flags uint64, cgroupFD int) (pid, pidfd int, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return p.Start(flags, cgroupFD)
}

// mustStart starts p and registers the close of its pidfd.
func mustStart(t *testing.T, p *Program, flags uint64, cgroupFD int) (pid, pidfd int) {
	t.Helper()
	pid, pidfd, err := start(p, flags, cgroupFD)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if flags, err := unix.FcntlInt(uintptr(pidfd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("pidfd flags %#x, %v: want FD_CLOEXEC", flags, err)
	}
	return pid, pidfd
}

// si_code of a SIGCHLD (CLD_*), which x/sys/unix does not name.
const (
	cldExited = 1
	cldKilled = 2
	cldDumped = 3
)

// exit is how a child ended, from its wait.
type exit struct {
	code   int32 // CLD_EXITED, CLD_KILLED or CLD_DUMPED
	status int32 // exit status or signal
}

func (e exit) String() string {
	switch e.code {
	case cldExited:
		return fmt.Sprintf("exit status %d", e.status)
	case cldKilled, cldDumped:
		return "killed by " + unix.SignalName(syscall.Signal(e.status))
	}
	return fmt.Sprintf("code %d status %d", e.code, e.status)
}

// wait reaps the child through its pidfd, then closes the pidfd.
func wait(t *testing.T, pidfd int) exit {
	t.Helper()
	defer unix.Close(pidfd)
	var info unix.Siginfo
	err := linux.IgnoringEINTR(func() error {
		return unix.Waitid(unix.P_PIDFD, pidfd, &info, unix.WEXITED, nil)
	})
	if err != nil {
		t.Fatalf("waitid on the pidfd: %v", err)
	}
	// siginfo_t for SIGCHLD: si_code at 8, si_status at 24.
	raw := (*[32]byte)(unsafe.Pointer(&info))
	return exit{
		code:   *(*int32)(unsafe.Pointer(&raw[8])),
		status: *(*int32)(unsafe.Pointer(&raw[24])),
	}
}

// outputPipe returns a pipe whose write end the child gets as its stdout
// (a dup3 call of p) and a function that returns what was written once the
// child has started: the parent's write end is closed then.
func outputPipe(t *testing.T, p *Program) (read func() string) {
	t.Helper()
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r := os.NewFile(uintptr(fds[0]), "pipe")
	t.Cleanup(func() { r.Close() })
	w := fds[1]
	p.Call("stdout to the pipe", unix.SYS_DUP3, Val(uintptr(w)), Val(1), Val(0))
	return func() string {
		unix.Close(w)
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
}

// run starts p, and returns its pid, what it wrote to its output pipe and
// how it ended.
func run(t *testing.T, p *Program, flags uint64, cgroupFD int, read func() string) (pid int, out string, e exit) {
	t.Helper()
	pid, pidfd := mustStart(t, p, flags, cgroupFD)
	out = read()
	return pid, out, wait(t, pidfd)
}

// noChildren checks that the test process has no child left, not even a
// zombie.
func noChildren(t *testing.T) {
	t.Helper()
	var info unix.Siginfo
	err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG, nil)
	if err != unix.ECHILD {
		t.Errorf("waitid for any child: %v, want ECHILD (a child is left)", err)
	}
}

func TestCallsThenExec(t *testing.T) {
	testenv.RequireRoot(t)
	var p Program
	read := outputPipe(t, &p)
	msg := []byte("written by a call\n")
	p.Call("write the message", unix.SYS_WRITE, Val(1), Val(p.Bytes(msg)), Val(uintptr(len(msg))))
	// The child's own pid, from one call to the next: it becomes the
	// child's process group, which the shell then reports.
	self := p.Call("getpid", unix.SYS_GETPID)
	p.Call("setpgid", unix.SYS_SETPGID, Val(0), self)
	execShell(t, &p, `echo "$$ $(cut -d' ' -f5 /proc/$$/stat)"; exit 7`)

	pid, out, e := run(t, &p, 0, -1, read)
	if e != (exit{cldExited, 7}) {
		t.Errorf("child: %v, want exit status 7", e)
	}
	want := fmt.Sprintf("written by a call\n%d %d\n", pid, pid)
	if out != want {
		t.Errorf("output %q, want %q", out, want)
	}
}

func TestNewPIDNamespace(t *testing.T) {
	testenv.RequireRoot(t)
	var p Program
	read := outputPipe(t, &p)
	execShell(t, &p, `echo $$`)
	if _, out, e := run(t, &p, unix.CLONE_NEWPID, -1, read); e != (exit{cldExited, 0}) || out != "1\n" {
		t.Errorf("child: %v, pid %q; want exit status 0 and pid 1 in its new pid namespace", e, out)
	}
}

func TestSlotDescriptor(t *testing.T) {
	testenv.RequireRoot(t)
	file := filepath.Join(t.TempDir(), "input")
	if err := os.WriteFile(file, []byte("read through a slot\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var p Program
	read := outputPipe(t, &p)
	fd := p.Call("open "+file, unix.SYS_OPENAT, Int(unix.AT_FDCWD), Val(p.Str(file)), Val(unix.O_RDONLY|unix.O_CLOEXEC))
	p.Call("stdin from "+file, unix.SYS_DUP3, fd, Val(0), Val(0))
	execShell(t, &p, `read line; echo "got: $line"`)
	if _, out, e := run(t, &p, 0, -1, read); e != (exit{cldExited, 0}) || out != "got: read through a slot\n" {
		t.Errorf("child: %v, output %q", e, out)
	}
}

func TestFailures(t *testing.T) {
	testenv.RequireRoot(t)
	missing := filepath.Join(t.TempDir(), "missing")
	openMissing := func(p *Program) Slot {
		return p.Call("open "+missing, unix.SYS_OPENAT, Int(unix.AT_FDCWD), Val(p.Str(missing)), Val(unix.O_RDONLY|unix.O_CLOEXEC))
	}
	for _, tc := range []struct {
		name  string
		build func(p *Program)
		what  string
		exec  bool
	}{
		{"call", func(p *Program) {
			p.Call("getpid", unix.SYS_GETPID)
			openMissing(p)
			p.Exec("/bin/true", []string{"true"}, nil)
		}, "open " + missing, false},
		{"exec", func(p *Program) {
			p.Exec(missing, []string{"missing"}, nil)
		}, "exec " + missing, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := testenv.OpenFiles(t)
			var p Program
			tc.build(&p)
			pid, pidfd, err := start(&p, 0, -1)
			var verr *Error
			if !errors.As(err, &verr) || verr.What != tc.what || verr.Errno != unix.ENOENT || verr.Exec != tc.exec {
				t.Fatalf("Start: %v (%#v), want *Error %q ENOENT, Exec %v", err, err, tc.what, tc.exec)
			}
			if !errors.Is(err, os.ErrNotExist) {
				t.Errorf("errors.Is(%v, fs.ErrNotExist) is false", err)
			}
			if pid != -1 || pidfd != -1 {
				t.Errorf("pid %d, pidfd %d after a failure, want -1 and -1", pid, pidfd)
			}
			noChildren(t)
			if after := testenv.OpenFiles(t); after != before {
				t.Errorf("%d open files after the failed start, %d before: the pidfd is left", after, before)
			}
		})
	}

	t.Run("tolerated", func(t *testing.T) {
		var p Program
		p.CallTolerating("open "+missing, unix.ENOENT, unix.SYS_OPENAT, Int(unix.AT_FDCWD), Val(p.Str(missing)), Val(unix.O_RDONLY))
		p.Exec("/bin/true", []string{"true"}, nil)
		_, pidfd := mustStart(t, &p, 0, -1)
		if e := wait(t, pidfd); e != (exit{cldExited, 0}) {
			t.Errorf("child: %v", e)
		}
	})
}

func TestRefusedPrograms(t *testing.T) {
	var other Program
	foreign := other.Call("getpid", unix.SYS_GETPID)
	for _, tc := range []struct {
		name  string
		build func(p *Program)
		flags uint64
		want  string
	}{
		{"no exec", func(p *Program) {}, 0, "no program to execute"},
		{"too many calls", func(p *Program) {
			for range MaxCalls + 1 {
				p.Call("getpid", unix.SYS_GETPID)
			}
		}, 0, "more than 512 calls"},
		{"too many arguments", func(p *Program) {
			p.Call("seven", unix.SYS_GETPID, Val(1), Val(2), Val(3), Val(4), Val(5), Val(6), Val(7))
		}, 0, "7 arguments"},
		{"slot of another program", func(p *Program) {
			p.Call("close", unix.SYS_CLOSE, foreign)
		}, 0, "does not come before it"},
		{"shared descriptors", func(p *Program) {}, unix.CLONE_FILES, "clone flags 0x400"},
		{"thread", func(p *Program) {}, unix.CLONE_THREAD | unix.CLONE_SIGHAND, "clone flags"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p Program
			tc.build(&p)
			if tc.name != "no exec" {
				p.Exec("/bin/true", []string{"true"}, nil)
			}
			_, _, err := start(&p, tc.flags, -1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start: %v, want an error saying %q", err, tc.want)
			}
			noChildren(t)
		})
	}
}

func TestSignals(t *testing.T) {
	testenv.RequireRoot(t)
	caught := make(chan os.Signal, 1)
	signal.Notify(caught, unix.SIGUSR1, unix.SIGTERM)
	defer signal.Stop(caught)
	signal.Ignore(unix.SIGHUP)
	defer signal.Reset(unix.SIGHUP)

	t.Run("program", func(t *testing.T) {
		var p Program
		read := outputPipe(t, &p)
		// cat catches no signal itself (GNU grep catches SIGSEGV).
		execShell(t, &p, `exec cat /proc/self/status`)
		_, pidfd := mustStart(t, &p, 0, -1)
		out := read()
		if e := wait(t, pidfd); e != (exit{cldExited, 0}) {
			t.Fatalf("child: %v", e)
		}
		masks := map[string]uint64{}
		var lines []string
		for _, line := range strings.Split(out, "\n") {
			name, hex, _ := strings.Cut(line, ":")
			if name != "SigBlk" && name != "SigIgn" && name != "SigCgt" {
				continue
			}
			lines = append(lines, line)
			v, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			masks[name] = v
		}
		bit := func(s syscall.Signal) uint64 { return 1 << (s - 1) }
		if len(masks) != 3 || masks["SigBlk"] != 0 || masks["SigCgt"] != 0 ||
			masks["SigIgn"]&bit(unix.SIGHUP) == 0 || masks["SigIgn"]&(bit(unix.SIGUSR1)|bit(unix.SIGTERM)) != 0 {
			t.Errorf("the program's signals:\n%s\nwant nothing blocked or caught, SIGHUP ignored", strings.Join(lines, "\n"))
		}
	})

	t.Run("blocked during the calls", func(t *testing.T) {
		var p Program
		mask := new(uint64)
		p.Keep(mask)
		p.Call("get the mask", unix.SYS_RT_SIGPROCMASK, Val(unix.SIG_BLOCK), Val(0), Val(uintptr(unsafe.Pointer(mask))), Val(8))
		p.Exec("/bin/true", []string{"true"}, nil)
		_, pidfd := mustStart(t, &p, 0, -1)
		wait(t, pidfd)
		// The kernel never blocks SIGKILL and SIGSTOP.
		want := ^uint64(0) &^ (1<<(unix.SIGKILL-1) | 1<<(unix.SIGSTOP-1))
		if *mask != want {
			t.Errorf("mask during the calls %#x, want %#x", *mask, want)
		}
	})

	// A signal the child sends itself stays pending until the mask is
	// emptied before execve, and then acts by its default: the parent's
	// handler is gone, and an ignored signal stays ignored.
	for _, tc := range []struct {
		sig  syscall.Signal
		want exit
	}{
		{unix.SIGUSR1, exit{cldKilled, int32(unix.SIGUSR1)}},
		{unix.SIGHUP, exit{cldExited, 3}},
	} {
		t.Run("pending "+unix.SignalName(tc.sig), func(t *testing.T) {
			var p Program
			self := p.Call("getpid", unix.SYS_GETPID)
			p.Call("kill", unix.SYS_KILL, self, Val(uintptr(tc.sig)))
			execShell(t, &p, `exit 3`)
			_, pidfd := mustStart(t, &p, 0, -1)
			if e := wait(t, pidfd); e != tc.want {
				t.Errorf("child: %v, want %v", e, tc.want)
			}
		})
	}

	t.Run("program kills itself", func(t *testing.T) {
		var p Program
		execShell(t, &p, `kill -USR1 $$; sleep 5`)
		_, pidfd := mustStart(t, &p, 0, -1)
		if e := wait(t, pidfd); e != (exit{cldKilled, int32(unix.SIGUSR1)}) {
			t.Errorf("child: %v, want killed by SIGUSR1", e)
		}
	})

	select {
	case s := <-caught:
		t.Errorf("the test process caught %v: a child's signal reached it", s)
	default:
	}
}

// cgroup2Mount is where this host mounts the cgroup2 hierarchy.
func cgroup2Mount(t *testing.T) string {
	t.Helper()
	mounts, err := linux.Mounts()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		if m.FSType == "cgroup2" {
			return m.Point
		}
	}
	testenv.SkipOrFail(t, "no cgroup2 hierarchy mounted")
	return ""
}

func TestIntoCgroup(t *testing.T) {
	testenv.RequireRoot(t)
	name := fmt.Sprintf("stack-test-vfork-%d", os.Getpid())
	dir := filepath.Join(cgroup2Mount(t), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := os.Remove(dir); err != nil {
			t.Errorf("remove the cgroup: %v", err)
		}
	}()
	cg, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(cg)

	var p Program
	read := outputPipe(t, &p)
	execShell(t, &p, `cat /proc/$$/cgroup`)
	_, out, e := run(t, &p, 0, cg, read)
	if e != (exit{cldExited, 0}) {
		t.Errorf("child: %v", e)
	}
	if !strings.Contains(out, "0::/"+name+"\n") {
		t.Errorf("the program's /proc/PID/cgroup:\n%s\nwant 0::/%s", out, name)
	}
}

func TestConcurrentStartsWithCollector(t *testing.T) {
	testenv.RequireRoot(t)
	// Memory the children must leave alone.
	big := make([]uint64, 4<<20)
	for i := range big {
		big[i] = uint64(i) * 0x9e3779b97f4a7c15
	}
	sum := func() (s uint64) {
		for i, v := range big {
			s = s*31 + v ^ uint64(i)
		}
		return s
	}
	before := sum()

	done := make(chan struct{})
	var collector sync.WaitGroup
	collector.Go(func() {
		var garbage [][]byte
		for {
			select {
			case <-done:
				return
			default:
			}
			garbage = append(garbage, make([]byte, 64<<10))
			if len(garbage) > 64 {
				garbage = nil
			}
			runtime.GC()
		}
	})

	const starts = 50
	errs := make(chan error, starts)
	var wg sync.WaitGroup
	for i := range starts {
		wg.Go(func() {
			errs <- startOne(t, i)
		})
	}
	wg.Wait()
	close(done)
	collector.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if sum() != before {
		t.Error("the parent's memory changed while children ran")
	}
	noChildren(t)
}

// startOne starts a child that writes its number to a pipe and executes
// /bin/true, and checks both.
func startOne(t *testing.T, i int) error {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return err
	}
	defer unix.Close(fds[0])
	var p Program
	msg := []byte(fmt.Sprintf("child %d", i))
	p.Call("write", unix.SYS_WRITE, Val(uintptr(fds[1])), Val(p.Bytes(msg)), Val(uintptr(len(msg))))
	p.Exec("/bin/true", []string{"true"}, nil)
	_, pidfd, err := start(&p, 0, -1)
	unix.Close(fds[1])
	if err != nil {
		return fmt.Errorf("start %d: %w", i, err)
	}
	got := make([]byte, 64)
	n, _ := unix.Read(fds[0], got)
	if e := wait(t, pidfd); e != (exit{cldExited, 0}) {
		return fmt.Errorf("child %d: %v", i, e)
	}
	if string(got[:n]) != string(msg) {
		return fmt.Errorf("child %d wrote %q", i, got[:n])
	}
	return nil
}

func TestParentStackSurvives(t *testing.T) {
	testenv.RequireRoot(t)
	for depth := range 4 {
		if err := startWithLocals(t, depth); err != nil {
			t.Error(err)
		}
	}
}

// startWithLocals calls Start depth frames down from frames full of
// locals, and checks every local after Start returns.
//
//go:noinline
func startWithLocals(t *testing.T, depth int) error {
	var locals [32]uint64
	for i := range locals {
		locals[i] = uint64(depth*1000 + i)
	}
	name := fmt.Sprintf("frame %d", depth)
	a, b, c := depth+1, depth+2, float64(depth)/3
	var err error
	if depth > 0 {
		err = startWithLocals(t, depth-1)
	} else {
		var p Program
		for range 100 {
			p.Call("getpid", unix.SYS_GETPID)
		}
		p.Exec("/bin/true", []string{"true"}, nil)
		var pidfd int
		_, pidfd, err = start(&p, 0, -1)
		if err == nil {
			wait(t, pidfd)
		}
	}
	for i := range locals {
		if locals[i] != uint64(depth*1000+i) {
			return fmt.Errorf("%s: locals[%d] is %d", name, i, locals[i])
		}
	}
	if name != fmt.Sprintf("frame %d", depth) || a != depth+1 || b != depth+2 || c != float64(depth)/3 {
		return fmt.Errorf("frame %d: locals changed: %q %d %d %v", depth, name, a, b, c)
	}
	return err
}

func TestStartGivesUpItsP(t *testing.T) {
	testenv.RequireRoot(t)
	// With one P, a goroutine runs while a child sleeps before its
	// execve only if Start lets the runtime hand that P on. (A raw
	// clone3 kept it for the child's whole run: the goroutine could not
	// run until Start returned.)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var inStart, ranDuring atomic.Bool
	stop := make(chan struct{})
	var other sync.WaitGroup
	other.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if inStart.Load() {
				ranDuring.Store(true)
			}
		}
	})
	var p Program
	// A second in the child, a thousand times the goroutine's period.
	sleep := unix.Timespec{Sec: 1}
	p.Keep(&sleep)
	p.Call("nanosleep", unix.SYS_NANOSLEEP, Val(uintptr(unsafe.Pointer(&sleep))), Val(0))
	p.Exec("/bin/true", []string{"true"}, nil)
	runtime.LockOSThread()
	inStart.Store(true)
	_, pidfd, err := p.Start(0, -1)
	inStart.Store(false)
	runtime.UnlockOSThread()
	close(stop)
	other.Wait()
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if e := wait(t, pidfd); e != (exit{cldExited, 0}) {
		t.Errorf("child: %v", e)
	}
	if !ranDuring.Load() {
		t.Error("no other goroutine ran while the child slept: Start held the only P")
	}
}
