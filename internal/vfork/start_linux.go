//go:build linux && (amd64 || arm64)

package vfork

import (
	"fmt"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Supported says whether Start can start a child here.
const Supported = true

// The flags Start adds itself, and those it refuses because the child
// would share with the parent what must be its own: its thread group
// (CLONE_THREAD), signal handlers (CLONE_SIGHAND), descriptor table
// (CLONE_FILES), root, working directory and umask (CLONE_FS), or would
// have the kernel write into memory the caller did not give (the TID and
// TLS flags).
const (
	startFlags   = unix.CLONE_VM | unix.CLONE_VFORK | unix.CLONE_PIDFD
	refusedFlags = unix.CLONE_THREAD | unix.CLONE_SIGHAND | unix.CLONE_FILES | unix.CLONE_FS |
		unix.CLONE_SETTLS | unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_SETTID |
		unix.CLONE_CHILD_CLEARTID | unix.CLONE_INTO_CGROUP | unix.CLONE_DETACHED |
		unix.CLONE_PTRACE | unix.CLONE_UNTRACED | 0xff // the low byte is clone's exit signal
)

// cloneArgs is the kernel's struct clone_args up to its cgroup field
// (CLONE_ARGS_SIZE_VER2).
type cloneArgs struct {
	flags      uint64
	pidfd      uint64
	childTID   uint64
	parentTID  uint64
	exitSignal uint64
	stack      uint64
	stackSize  uint64
	tls        uint64
	setTID     uint64
	setTIDSize uint64
	cgroup     uint64
}

// Markers in child.failed for the steps that are not one of the caller's
// calls; a failed call i is i+1.
const (
	failedNone        = 0
	failedSignalReset = MaxCalls + 1
	failedSignalMask  = MaxCalls + 2
	failedExec        = MaxCalls + 3
)

const (
	sigsetSize = 8 // the kernel's sigset_t: 64 signals
	sigDFL     = 0
	sigIGN     = 1
)

// child is all the memory the child reads and writes, allocated and filled
// by the parent before clone3. The child writes only its integer fields.
type child struct {
	calls []call
	slots [MaxCalls]uintptr

	path, argv, envp uintptr

	// failed is 0, i+1 for a failed call i, or a failed* marker; errno is
	// its errno, and failedSignal the signal whose reset failed.
	failed, errno, failedSignal uintptr

	// oldAction receives a disposition the child queries; defaultAction is
	// SIG_DFL with no flags and no mask. Four words hold the kernel's struct
	// sigaction on amd64 (handler, flags, restorer, mask) and on arm64.
	oldAction, defaultAction [4]uintptr
	emptyMask                uint64

	// The parent's mask around clone3.
	allMask, savedMask uint64

	// handlersCleared: the kernel gave the child SIG_DFL for every signal
	// with a handler (CLONE_CLEAR_SIGHAND), so it need not.
	handlersCleared bool

	pidfd int32
	args  cloneArgs
}

// Start creates the child with clone3(CLONE_VM|CLONE_VFORK|CLONE_PIDFD|flags),
// into the cgroup open at cgroupFD when it is not negative
// (CLONE_INTO_CGROUP), with SIGCHLD as its exit signal. flags may hold
// namespace flags (CLONE_NEWPID, ...) and CLONE_PARENT, CLONE_SYSVSEM,
// CLONE_IO, CLONE_CLEAR_SIGHAND.
//
// Start returns once the child has executed its program, with its pid and
// a pidfd of it (O_CLOEXEC), which the caller waits on and closes. Or it
// returns once the child failed: the error is then an *Error naming the
// call (or "exec PATH") and its errno, the child has exited and been
// reaped, and there is no pidfd. A child killed before its execve (by a
// SIGKILL from elsewhere) is reported as started; its wait says how it
// ended.
//
// The caller must be on a goroutine locked to its thread
// (runtime.LockOSThread): the child inherits this thread's namespaces,
// credentials, root, working directory and umask.
func (p *Program) Start(flags uint64, cgroupFD int) (pid, pidfd int, err error) {
	if p.err != nil {
		return -1, -1, fmt.Errorf("vfork: %w", p.err)
	}
	if !p.execSet {
		return -1, -1, fmt.Errorf("vfork: no program to execute (Exec was not called)")
	}
	if flags&refusedFlags != 0 {
		return -1, -1, fmt.Errorf("vfork: clone flags %#x are not for a child that runs its own program", flags&refusedFlags)
	}
	c := &child{
		calls: p.calls,
		path:  p.path,
		argv:  p.argv,
		envp:  p.envp,
		// SIGKILL and SIGSTOP are not in it: the kernel never blocks them.
		allMask: ^uint64(0),
	}
	c.args = cloneArgs{
		flags:      startFlags | flags,
		pidfd:      uint64(uintptr(unsafe.Pointer(&c.pidfd))),
		exitSignal: uint64(unix.SIGCHLD),
	}
	if cgroupFD >= 0 {
		c.args.flags |= unix.CLONE_INTO_CGROUP
		c.args.cgroup = uint64(cgroupFD)
	}

	// The mask is this thread's; the caller has locked it already, and
	// this lock (nested) only guards Start against a caller that forgot.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if _, _, errno := syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK,
		uintptr(unsafe.Pointer(&c.allMask)), uintptr(unsafe.Pointer(&c.savedMask)), sigsetSize, 0, 0); errno != 0 {
		return -1, -1, fmt.Errorf("vfork: block signals: %w", errno)
	}
	// CLONE_CLEAR_SIGHAND (Linux 5.5) has the kernel reset the child's
	// handlers as runChild would, without its hundred system calls;
	// where the kernel refuses the flag, the child does it.
	clearable := c.args.flags&unix.CLONE_CLEAR_SIGHAND == 0
	if clearable {
		c.args.flags |= unix.CLONE_CLEAR_SIGHAND
		c.handlersCleared = true
	}
	r, errno := startChild(c)
	if clearable && errno == unix.EINVAL {
		c.args.flags &^= unix.CLONE_CLEAR_SIGHAND
		c.handlersCleared = false
		r, errno = startChild(c)
	}
	// Signals that came in while the child ran (the runtime's preemption
	// requests among them) are delivered here, to the parent.
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK,
		uintptr(unsafe.Pointer(&c.savedMask)), 0, sigsetSize, 0, 0)
	runtime.KeepAlive(p)
	runtime.KeepAlive(c)
	if errno != 0 {
		return -1, -1, &Error{What: "clone3", Errno: errno}
	}
	pid, pidfd = int(r), int(c.pidfd)
	if c.failed == failedNone {
		return pid, pidfd, nil
	}

	// The child stored what failed before exit_group; CLONE_VFORK resumed
	// this thread when it released the memory, before it became a zombie,
	// so the wait may block for a moment.
	failure := &Error{What: p.failedWhat(c), Errno: unix.Errno(c.errno), Exec: c.failed == failedExec}
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PIDFD, pidfd, &info, unix.WEXITED, nil)
		if err != unix.EINTR {
			if err != nil {
				failure.What += " (and reap the child: " + err.Error() + ")"
			}
			break
		}
	}
	unix.Close(pidfd)
	return -1, -1, failure
}

// failedWhat names the step the child reported failing.
func (p *Program) failedWhat(c *child) string {
	switch {
	case c.failed == failedExec:
		return p.execWhat
	case c.failed == failedSignalReset:
		return fmt.Sprintf("reset the disposition of signal %d", c.failedSignal)
	case c.failed == failedSignalMask:
		return "unblock signals"
	case c.failed >= 1 && c.failed <= uintptr(len(p.whats)):
		return p.whats[c.failed-1]
	}
	return fmt.Sprintf("step %d of the child", c.failed)
}

// entersyscall and exitsyscall are the runtime's, as syscall.Syscall uses
// them: entersyscall saves its caller's stack pointer, so it is called
// straight from startChild, without a wrapper.
//
//go:linkname entersyscall runtime.entersyscall
func entersyscall()

//go:linkname exitsyscall runtime.exitsyscall
func exitsyscall()

// rawClone3 makes the clone3 system call with the return address kept in
// a register: clone3_*.s. It returns the child's pid in the parent and 0 in
// the child, or errno.
//
//go:noescape
func rawClone3(args *cloneArgs, size uintptr) (pid, errno uintptr)

// startChild creates the child. In the parent it returns once the child
// has executed its program or exited; the child runs runChild and never
// returns. In the parent, nothing after rawClone3 reads this frame, which
// the child has used too.
//
//go:nosplit
//go:norace
//go:nocheckptr
//go:noinline
func startChild(c *child) (pid uintptr, errno unix.Errno) {
	// The clone3 blocks this thread until the child executes, about a
	// millisecond; entering it as a system call lets the runtime give the
	// P to other goroutines meanwhile. A raw call kept it, so with two
	// children in flight on two CPUs no goroutine of the caller could run
	// while the children waited (for a grace period in umount, say), and
	// the CPUs went idle. entersyscall also forbids stack growth until
	// exitsyscall, which the nosplit chain of the child never asks for.
	entersyscall()
	r, e := rawClone3(&c.args, unsafe.Sizeof(c.args))
	if r != 0 || e != 0 {
		exitsyscall()
		return r, unix.Errno(e)
	}
	runChild(c)
	return 0, 0 // not reached: runChild ends in execve or exit_group
}

// runChild is the child: it resets signal handlers, makes the calls and
// executes the program. See the package doc for what it must not do.
//
//go:nosplit
//go:norace
//go:nocheckptr
//go:noinline
func runChild(c *child) {
	// Go's handlers must never run here: set SIG_DFL wherever there is a
	// handler, before anything is unblocked, unless the kernel has. A
	// signal the kernel will not report on (EINVAL) has no handler to
	// reset.
	for sig := uintptr(1); sig <= 64 && !c.handlersCleared; sig++ {
		_, _, e := syscall.RawSyscall6(unix.SYS_RT_SIGACTION, sig, 0,
			uintptr(unsafe.Pointer(&c.oldAction)), sigsetSize, 0, 0)
		if e != 0 || c.oldAction[0] == sigDFL || c.oldAction[0] == sigIGN {
			continue
		}
		_, _, e = syscall.RawSyscall6(unix.SYS_RT_SIGACTION, sig,
			uintptr(unsafe.Pointer(&c.defaultAction)), 0, sigsetSize, 0, 0)
		if e != 0 {
			c.failedSignal = sig
			fail(c, failedSignalReset, uintptr(e))
		}
	}

	var args [maxArgs]uintptr
	// A local copy of the slice, which no call can change, lets the
	// compiler drop the bounds check: nothing here may panic.
	calls := c.calls
	for i := range calls {
		call := &calls[i]
		for j := range args {
			v := call.args[j]
			if call.fromSlot&(1<<j) != 0 {
				v = c.slots[v&(MaxCalls-1)]
			}
			args[j] = v
		}
		r, _, e := syscall.RawSyscall6(call.trap, args[0], args[1], args[2], args[3], args[4], args[5])
		if e != 0 && uintptr(e) != call.tolerate {
			fail(c, uintptr(i)+1, uintptr(e))
		}
		c.slots[i&(MaxCalls-1)] = r
	}

	// Unblocked only now, with no handler left: what is pending acts by its
	// default, and the program starts with an empty mask.
	if _, _, e := syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK,
		uintptr(unsafe.Pointer(&c.emptyMask)), 0, sigsetSize, 0, 0); e != 0 {
		fail(c, failedSignalMask, uintptr(e))
	}
	_, _, e := syscall.RawSyscall6(unix.SYS_EXECVE, c.path, c.argv, c.envp, 0, 0, 0)
	fail(c, failedExec, uintptr(e))
}

// fail records what failed for the parent, which reads it once the child
// is gone, and exits.
//
//go:nosplit
//go:norace
//go:nocheckptr
func fail(c *child, step, errno uintptr) {
	c.failed = step
	c.errno = errno
	for {
		syscall.RawSyscall6(unix.SYS_EXIT_GROUP, 127, 0, 0, 0, 0, 0)
	}
}
