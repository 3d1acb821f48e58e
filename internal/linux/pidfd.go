package linux

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNoPidfd is returned by OpenPidfd on a kernel without pidfd_open
// (before Linux 5.3) or without PIDFD_NONBLOCK (before 5.10): callers fall
// back to signalling and polling by pid.
var ErrNoPidfd = errors.New("pidfd_open with PIDFD_NONBLOCK is not supported")

// Pidfd holds a process by a pidfd: a signal sent through it can only
// reach that process, never another that reused its pid, and it becomes
// readable once the process has exited (a zombie counts), for any
// process, not only a child.
type Pidfd struct {
	f   *os.File
	pid int
}

// OpenPidfd opens a pidfd for pid. A process that does not exist (any
// more) is an error wrapping os.ErrProcessDone. The pid is only as good as
// its source: a caller that read it earlier must check after OpenPidfd
// that the process is still the one it meant (its cgroup, its start time).
func OpenPidfd(pid int) (*Pidfd, error) {
	fd, err := IgnoringEINTRN(func() (int, error) { return unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK) })
	switch {
	case err == nil:
	case errors.Is(err, unix.ESRCH):
		return nil, fmt.Errorf("pidfd of pid %d: %w", pid, os.ErrProcessDone)
	case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EINVAL):
		return nil, fmt.Errorf("pidfd of pid %d: %w", pid, ErrNoPidfd)
	default:
		return nil, fmt.Errorf("pidfd of pid %d: %w", pid, err)
	}
	// Non-blocking, so os.NewFile hands it to the runtime's poller:
	// waiting for an exit parks a goroutine, not a thread.
	return &Pidfd{f: os.NewFile(uintptr(fd), fmt.Sprintf("pidfd:%d", pid)), pid: pid}, nil
}

// Pid is the pid the pidfd was opened for.
func (p *Pidfd) Pid() int { return p.pid }

// Signal sends sig to the process; one that has exited is not an error.
func (p *Pidfd) Signal(sig syscall.Signal) error {
	rc, err := p.f.SyscallConn()
	if err != nil {
		return fmt.Errorf("send %v to pid %d: %w", sig, p.pid, err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = IgnoringEINTR(func() error { return unix.PidfdSendSignal(int(fd), sig, nil, 0) })
	}); err != nil {
		return fmt.Errorf("send %v to pid %d: %w", sig, p.pid, err)
	}
	if serr != nil && !errors.Is(serr, unix.ESRCH) {
		return fmt.Errorf("send %v to pid %d: %w", sig, p.pid, serr)
	}
	return nil
}

// Wait returns once the process has exited, or with ctx's error once ctx
// ends.
func (p *Pidfd) Wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rc, err := p.f.SyscallConn()
	if err != nil {
		return fmt.Errorf("wait for pid %d: %w", p.pid, err)
	}
	// A deadline in the past wakes the pending wait below; the context
	// has no other way in.
	stop := context.AfterFunc(ctx, func() { p.f.SetReadDeadline(aLongTimeAgo) })
	defer stop()
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		// Read asks the poller to wait whenever this returns false; a
		// pidfd is readable once its process has exited.
		var exited bool
		exited, perr = pidfdReadable(fd)
		return exited || perr != nil
	})
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ctx.Err()
	case err != nil:
		return fmt.Errorf("wait for pid %d: %w", p.pid, err)
	case perr != nil:
		return fmt.Errorf("wait for pid %d: %w", p.pid, perr)
	}
	return nil
}

// aLongTimeAgo is a deadline that has always passed.
var aLongTimeAgo = time.Unix(1, 0)

// pidfdReadable polls fd without blocking.
func pidfdReadable(fd uintptr) (bool, error) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := IgnoringEINTRN(func() (int, error) { return unix.Poll(fds, 0) })
	if err != nil {
		return false, fmt.Errorf("poll pidfd: %w", err)
	}
	return n > 0 && fds[0].Revents&(unix.POLLIN|unix.POLLHUP|unix.POLLERR) != 0, nil
}

// Close releases the pidfd.
func (p *Pidfd) Close() error { return p.f.Close() }
