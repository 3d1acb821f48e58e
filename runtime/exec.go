package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	goruntime "runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
	"github.com/stack-containers/stack/runtime/containerinit"
	"github.com/stack-containers/stack/seccomp"
)

// How a process enters a running container, and why it takes two
// processes and one locked thread in each (Go cannot do setns before its
// runtime has started threads, and some namespaces refuse a process that
// has several):
//
//   - pid: setns(CLONE_NEWPID) never moves the caller; it decides where
//     the caller's next children go. So the parent (Exec) enters it on a
//     thread of its own, locked and never unlocked, and starts the entering
//     process from that thread: the kernel creates it inside the
//     container's pid namespace, as a child of the parent. The thread dies
//     with its goroutine once the process has been waited for, so no other
//     goroutine ever forks from it, and a parent-death signal (which fires
//     when the forking thread exits) cannot fire early.
//   - mount: setns(CLONE_NEWNS) is refused to a thread that shares its
//     filesystem context (root, cwd) with other threads, which every Go
//     thread does. The entering process (the init program, with
//     containerinit.ExecArg, on its one locked thread, as the init) takes
//     a context of its own with unshare(CLONE_FS) first, then enters the
//     mount namespace, whose root and cwd become the container's root. The other namespaces
//     (ipc, uts, net, cgroup) are entered the same way, before it.
//   - user: setns(CLONE_NEWUSER) is refused to any process with more than
//     one thread, which a Go process always has; a container with a user
//     namespace of its own cannot be entered, and Exec says so.
//
// From there the entering process (containerinit's runExec) follows the
// init's own tail: the parent puts it in the container's cgroup before it
// runs anything of the user's, it finds the workdir and program and drops
// to the container's identity and confinement before execve. The command
// is then the parent's child, inside every namespace of the container; the
// kernel kills it with the rest of the pid namespace when the container's
// PID 1 ends.

// nsOrder is the order in which the namespaces are entered: user first
// (it decides what the others may do), mount last (after it, /proc is the
// container's), pid by the parent.
var nsOrder = []string{"user", "ipc", "uts", "net", "cgroup", "pid", "mnt"}

// ExecSpec is a process to start inside a running container.
type ExecSpec struct {
	// Name is the container's name, used in every error.
	Name string
	// Init is the program that enters the container; nil re-executes
	// the running binary (see InitProgram).
	Init *InitProgram
	// Pid is the host pid of the container's PID 1, whose namespaces the
	// process enters.
	Pid int
	// Same, when not nil, is asked once the container's namespaces are
	// held whether Pid is still the container's PID 1: a pid that was
	// reused by another process must not be entered.
	Same func() bool
	// Args is the command; Args[0] is looked up in the container's PATH.
	Args []string
	// Env is KEY=VALUE; a default PATH is added when missing.
	Env []string
	// Workdir is inside the container; empty means /.
	Workdir string
	// User, when not empty, is uid[:gid] or user[:group], looked up in
	// the container's own /etc/passwd and /etc/group for the uid, the gid
	// and the supplementary groups, as in Spec; when empty, UID and GID
	// are used, with GID the only group.
	User     string
	UID, GID uint32
	// Caps and Seccomp are the container's own, as in Spec: the process
	// gets the capabilities and the filter its PID 1 got.
	Caps    []string
	Seccomp *seccomp.Profile
	// Cgroup receives the process before it runs anything of the user's,
	// so that it counts against the container's limits and device rules.
	Cgroup Cgroup
	// Tty gives the process a terminal of the container's own /dev/pts as
	// stdin, stdout and stderr (its controlling terminal); the master is
	// ExecProcess.Console. Stdin, Stdout and Stderr are then unused.
	Tty bool
	// TtySize is the terminal's size before the program starts; nil
	// leaves the kernel's default.
	TtySize *unix.Winsize
	// Stdin, Stdout and Stderr are the process's; nil means /dev/null. An
	// *os.File is passed through as is; other writers are copied from a
	// pipe until the process ends and at most a second after.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// ParentDeathSignal, when not 0, is sent to the process when the
	// caller dies.
	ParentDeathSignal syscall.Signal
}

// ExecProcess is a process started by Exec.
type ExecProcess struct {
	child
	name    string
	console *os.File
}

// Exec starts a process inside the running container spec.Pid belongs
// to, and returns once its program has been exec'd. A failure to run the
// program itself is a *CommandError; every error names the container.
func Exec(spec *ExecSpec) (*ExecProcess, error) {
	p, err := startExec(spec)
	if err != nil {
		return nil, fmt.Errorf("container %q: %w", spec.Name, err)
	}
	return p, nil
}

func startExec(spec *ExecSpec) (_ *ExecProcess, err error) {
	if len(spec.Args) == 0 || spec.Args[0] == "" {
		return nil, errors.New("no command")
	}
	caps, filter, err := confinement(spec.Caps, spec.Seccomp)
	if err != nil {
		return nil, err
	}
	cfg := &containerinit.ExecConfig{
		Process: containerinit.Process{
			Args:              spec.Args,
			Env:               withDefaultPath(spec.Env),
			Workdir:           spec.Workdir,
			User:              spec.User,
			UID:               spec.UID,
			GID:               spec.GID,
			Caps:              caps,
			Seccomp:           filter,
			ParentDeathSignal: spec.ParentDeathSignal,
		},
		Tty:     spec.Tty,
		TtySize: spec.TtySize,
	}
	if cfg.Workdir == "" {
		cfg.Workdir = "/"
	}
	nsFiles, pidNS, err := openNamespaces(spec.Pid)
	defer func() {
		for _, f := range nsFiles {
			f.Close()
		}
		if pidNS != nil {
			pidNS.Close()
		}
	}()
	if err != nil {
		return nil, err
	}
	if spec.Same != nil && !spec.Same() {
		return nil, errNotRunning
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("exec pipe: %w", err)
	}
	pipe := pair[0]
	defer unix.Close(pipe)
	files := []*os.File{os.NewFile(uintptr(pair[1]), "exec-pipe")}
	// Closed again (a no-op) once the process holds its copies.
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, f := range nsFiles {
		cfg.Joins = append(cfg.Joins, containerinit.NsJoin{Kind: f.Name(), FD: initPipeFD + len(files)})
		files = append(files, f)
	}
	files, placeCg, err := planPlacement(&cfg.Placement, spec.Cgroup, files)
	if err != nil {
		return nil, err
	}
	payload, err := containerinit.EncodeExecConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode the exec configuration: %w", err)
	}
	if err := containerinit.Send(pipe, containerinit.MsgConfig, payload); err != nil {
		return nil, fmt.Errorf("send the exec configuration: %w", err)
	}
	initPath, extra := spec.Init.command(files)
	cmd := &exec.Cmd{
		Path:       initPath,
		Args:       []string{"stack", containerinit.ExecArg},
		Env:        initEnv(),
		ExtraFiles: extra,
		SysProcAttr: &syscall.SysProcAttr{
			// A session of its own: the leader of the terminal it may
			// be given, and out of reach of the caller's terminal's
			// signals (the caller passes them on).
			Setsid: true,
			// No Pdeathsig here: Go's child checks after setting it that
			// getppid() is still the parent, and in the container's pid
			// namespace getppid() is 0, so the child would kill itself.
			// runExec sets it instead.
		},
		// Only for writers that are not files: a child of the command
		// that keeps its output open must not hold up Wait.
		WaitDelay: time.Second,
	}
	if !spec.Tty {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = spec.Stdin, spec.Stdout, spec.Stderr
	}
	p := &ExecProcess{child: newChild(cmd, fmt.Sprintf("container %q: exec", spec.Name)), name: spec.Name}
	if err := p.start(pidNS); err != nil {
		return nil, err
	}
	// The process holds its own copies now; ours must go for the pipe to
	// reach end-of-file when it execs.
	for _, f := range files {
		f.Close()
	}
	console, err := execHandshake(pipe, cmd.Process.Pid, placeCg)
	if err != nil {
		if kerr := cmd.Process.Kill(); kerr != nil && !errors.Is(kerr, os.ErrProcessDone) {
			err = fmt.Errorf("%w (and then: kill: %w)", err, kerr)
		}
		<-p.done
		if errors.Is(err, errInitDied) {
			err = fmt.Errorf("the process entering the container ended before exec (%s)", describeStatus(p.status))
			if !p.containerAlive(spec) {
				err = errNotRunning
			}
		}
		return nil, err
	}
	p.console = console
	return p, nil
}

// describeStatus says how a process ended, for an error.
func describeStatus(st ExitStatus) string {
	if st.Signaled {
		return fmt.Sprintf("killed by signal %d", st.Signal)
	}
	return fmt.Sprintf("exit status %d", st.Code)
}

// errNotRunning means the container's PID 1 is gone.
var errNotRunning = errors.New("not running")

// ErrNotRunning reports whether err says that the container to enter is
// not running.
func ErrNotRunning(err error) bool { return errors.Is(err, errNotRunning) }

func (p *ExecProcess) containerAlive(spec *ExecSpec) bool {
	if spec.Same != nil {
		return spec.Same()
	}
	return unix.Kill(spec.Pid, 0) == nil
}

// start starts the entering process from a thread inside the container's
// pid namespace (see the top of this file), and waits for it.
func (p *ExecProcess) start(pidNS *os.File) error {
	started := make(chan error, 1)
	go func() {
		retire, err := p.startIn(pidNS)
		started <- err
		if retire {
			// Never expected (the kernel refused to undo its own
			// setns): the thread, still locked to this goroutine, is
			// parked for the rest of the process's life, so that it
			// neither ends nor puts another goroutine's children in the
			// container.
			if err == nil {
				go p.wait()
			}
			select {}
		}
		if err == nil {
			p.wait()
		}
	}()
	return <-started
}

// startIn starts the process on a locked thread whose children go to
// pidNS, then gives the thread back as it found it. The thread must not
// end: an earlier goroutine of the supervisor may have started a
// container's init from it, and that init's parent-death signal fires
// when its forking thread exits; Go ends a thread whose goroutine returns
// while locked to it, so the thread is unlocked again, never left locked.
// retire says the thread could not be given back (see start).
func (p *ExecProcess) startIn(pidNS *os.File) (retire bool, err error) {
	if pidNS == nil {
		if err := p.cmd.Start(); err != nil {
			return false, fmt.Errorf("start the entering process: %w", err)
		}
		return false, nil
	}
	own, err := unix.Open("/proc/self/ns/pid", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("open the own pid namespace: %w", err)
	}
	defer unix.Close(own)
	goruntime.LockOSThread()
	if err := unix.Setns(int(pidNS.Fd()), unix.CLONE_NEWPID); err != nil {
		goruntime.UnlockOSThread()
		return false, fmt.Errorf("enter pid namespace: %w", err)
	}
	serr := p.cmd.Start()
	if err := unix.Setns(own, unix.CLONE_NEWPID); err != nil {
		if serr == nil {
			return true, nil
		}
		return true, fmt.Errorf("start the entering process: %w", serr)
	}
	goruntime.UnlockOSThread()
	if serr != nil {
		return false, fmt.Errorf("start the entering process: %w", serr)
	}
	return false, nil
}

// openNamespaces opens the namespaces of pid that differ from this
// process's: the ones to enter, each *os.File named by its kind, and the
// pid namespace apart (the parent enters it).
func openNamespaces(pid int) (files []*os.File, pidNS *os.File, err error) {
	for _, kind := range nsOrder {
		theirs := fmt.Sprintf("/proc/%d/ns/%s", pid, kind)
		var their, our unix.Stat_t
		if err := unix.Stat(theirs, &their); err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
				return files, pidNS, errNotRunning
			}
			return files, pidNS, fmt.Errorf("read %s: %w", theirs, err)
		}
		if err := unix.Stat("/proc/self/ns/"+kind, &our); err != nil {
			return files, pidNS, fmt.Errorf("read /proc/self/ns/%s: %w", kind, err)
		}
		if their.Ino == our.Ino && their.Dev == our.Dev {
			continue // shared with the host: nothing to enter
		}
		if kind == "user" {
			return files, pidNS, errors.New("it has a user namespace of its own, which a process of stack (a Go program, always several threads) cannot enter")
		}
		fd, err := unix.Open(theirs, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
				return files, pidNS, errNotRunning
			}
			return files, pidNS, fmt.Errorf("open %s: %w", theirs, err)
		}
		// Named by its kind, which the entering process is told.
		f := os.NewFile(uintptr(fd), kind)
		if kind == "pid" {
			pidNS = f
			continue
		}
		files = append(files, f)
	}
	return files, pidNS, nil
}

// execHandshake follows the entering process to its execve: it places it
// in the cgroup, takes its terminal's master when it sends one, and returns
// once exec succeeded.
func execHandshake(pipe, pid int, cg Cgroup) (console *os.File, err error) {
	defer func() {
		if err != nil && console != nil {
			console.Close()
			console = nil
		}
	}()
	execing := false
	for {
		kind, payload, fd, err := receiveWithRights(pipe)
		if errors.Is(err, io.EOF) {
			if execing {
				return console, nil
			}
			return console, errInitDied
		}
		if err != nil {
			return console, fmt.Errorf("read from the entering process: %w", err)
		}
		switch kind {
		case containerinit.MsgReady:
			if cg != nil {
				if err := cg.AddProc(pid); err != nil {
					return console, fmt.Errorf("join cgroup %s: %w", cg.Path(), err)
				}
			}
			if err := containerinit.Send(pipe, containerinit.MsgGo, nil); err != nil {
				return console, fmt.Errorf("resume the entering process: %w", err)
			}
		case containerinit.MsgConsole:
			if fd < 0 {
				return console, errors.New("the entering process sent a terminal without its descriptor")
			}
			console = os.NewFile(uintptr(fd), "pty-master")
		case containerinit.MsgExec:
			execing = true
		case containerinit.MsgError, containerinit.MsgCommandError, containerinit.MsgProgramError:
			return console, decodeFailure(kind, payload)
		default:
			return console, fmt.Errorf("unexpected message %q from the entering process", kind)
		}
	}
}

// receiveWithRights is receive for a message that may carry one
// descriptor (SCM_RIGHTS); fd is -1 when it carries none.
func receiveWithRights(sock int) (kind byte, payload []byte, fd int, err error) {
	size, err := linux.IgnoringEINTRN(func() (int, error) {
		n, _, err := unix.Recvfrom(sock, nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		return n, err
	})
	if err != nil {
		return 0, nil, -1, err
	}
	if size == 0 {
		return 0, nil, -1, io.EOF
	}
	buf := make([]byte, size)
	oob := make([]byte, unix.CmsgSpace(4))
	var n, oobn int
	err = linux.IgnoringEINTR(func() error {
		var err error
		n, oobn, _, _, err = unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
		return err
	})
	if err != nil {
		return 0, nil, -1, err
	}
	if n == 0 {
		return 0, nil, -1, io.EOF
	}
	fd = -1
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return 0, nil, -1, fmt.Errorf("parse control message: %w", err)
		}
		for _, m := range msgs {
			fds, err := unix.ParseUnixRights(&m)
			if err != nil {
				return 0, nil, -1, fmt.Errorf("parse descriptors: %w", err)
			}
			for _, f := range fds {
				if fd < 0 {
					fd = f
				} else {
					unix.Close(f)
				}
			}
		}
	}
	return buf[0], buf[1:n], fd, nil
}

// Pid is the process's host pid.
func (p *ExecProcess) Pid() int { return p.cmd.Process.Pid }

// Console is the master of the process's terminal, nil without one; the
// caller closes it once done with it.
func (p *ExecProcess) Console() *os.File { return p.console }

// Signal sends sig to the process; one that has ended is not an error.
func (p *ExecProcess) Signal(sig syscall.Signal) error {
	err := p.cmd.Process.Signal(sig)
	if err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("container %q: exec: signal %v: %w", p.name, sig, err)
	}
	return nil
}

// Kill kills the process and every process of its group (a CMD-SHELL's
// children, say) while it has not been waited for.
func (p *ExecProcess) Kill() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	// The process is the leader of its own session and group (Setsid).
	// Until it is waited for, its pid (and so its group's id) cannot be
	// reused; done is closed only after the wait, so the window in which
	// this could reach another group is the few instructions between the
	// two.
	if err := unix.Kill(-p.cmd.Process.Pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("container %q: exec: kill: %w", p.name, err)
	}
	return nil
}
