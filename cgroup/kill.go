package cgroup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
)

// killAll SIGKILLs every process that procs lists until it lists none.
//
// Each round freezes the cgroup first (when there is a freezer): a frozen
// task can neither fork a child we would miss nor exit and have its pid
// reused before the signal lands. SIGKILL stays pending on a frozen task, so
// the round thaws last and the tasks die on the way out of the freezer.
// Without a freezer the rounds still converge, because every round kills
// what the previous one missed.
//
// Each process is signalled through a pidfd, and the round then waits for
// the pidfds to turn readable, which the kernel does once each process has
// exited, after it has left its cgroup (cgroup_exit comes before
// exit_notify): no polling while the kernel tears the processes down. Only
// a round that leaves processes listed (one forked without a freezer, or a
// kernel that lists a task a moment after its exit) is followed by a
// pause, growing as wait says.
func killAll(dir string, procs func() ([]int, error), freeze, thaw func() error, wait linux.Backoff) error {
	deadline := time.Now().Add(wait.Total)
	done, err := wait.Poll(func() (bool, error) {
		pids, err := procs()
		if err != nil || len(pids) == 0 {
			return err == nil, err
		}
		held, err := killRound(dir, pids, procs, freeze, thaw)
		defer closeAll(held)
		if err != nil {
			return false, err
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		for _, p := range held {
			if err := p.Wait(ctx); err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					// The poll's own deadline reports it.
					return false, nil
				}
				return false, fmt.Errorf("cgroup: kill %s: %w", dir, err)
			}
		}
		pids, err = procs()
		return err == nil && len(pids) == 0, err
	})
	if err != nil {
		return err
	}
	if !done {
		return fmt.Errorf("cgroup: kill %s: processes remain after %v", dir, wait.Total)
	}
	return nil
}

// killRound SIGKILLs the cgroup's processes, frozen if it can be, and
// returns the pidfds of the processes it signalled, for the caller to wait
// on and close (even on error). listed is what procs listed just before:
// without a freezer it is the round's list; frozen, procs lists again, as
// the cgroup may have changed before it froze.
//
// A pid read from cgroup.procs could be freed and reused by a process
// elsewhere before the signal: frozen, no listed process can exit, so the
// list stays true; without a freezer each pidfd is checked against a second
// list read after it was opened. A pid listed both before and after its
// pidfd was opened is the pidfd's process, in the cgroup: a pid names one
// process at a time, and the pidfd's is the one that had it at the open.
// On a kernel without pidfds the processes are signalled by pid, and the
// caller's pauses take the place of the wait.
func killRound(dir string, listed []int, procs func() ([]int, error), freeze, thaw func() error) (held []*linux.Pidfd, err error) {
	pids := listed
	if freeze != nil {
		if err := freeze(); err != nil {
			return nil, errors.Join(err, thaw())
		}
		defer func() { err = errors.Join(err, thaw()) }()
		if pids, err = procs(); err != nil {
			return nil, err
		}
	}
	var byPid []int
	for _, pid := range pids {
		p, err := linux.OpenPidfd(pid)
		switch {
		case err == nil:
			held = append(held, p)
		case errors.Is(err, os.ErrProcessDone):
		case errors.Is(err, linux.ErrNoPidfd):
			byPid = append(byPid, pid)
		default:
			return held, fmt.Errorf("cgroup: kill %s: %w", dir, err)
		}
	}
	if freeze == nil && len(held) > 0 {
		again, err := procs()
		if err != nil {
			return held, err
		}
		var still []*linux.Pidfd
		for _, p := range held {
			if slices.Contains(again, p.Pid()) {
				still = append(still, p)
			} else {
				p.Close()
			}
		}
		held = still
	}
	for _, p := range held {
		if err := p.Signal(unix.SIGKILL); err != nil {
			return held, fmt.Errorf("cgroup: kill %s: %w", dir, err)
		}
	}
	for _, pid := range byPid {
		if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
			return held, fmt.Errorf("cgroup: kill pid %d of %s: %w", pid, dir, err)
		}
	}
	return held, nil
}

// closeAll closes pidfds; a close error of a pidfd carries nothing
// actionable.
func closeAll(held []*linux.Pidfd) {
	for _, p := range held {
		_ = p.Close()
	}
}

// waitEvent waits until cgroup.events reports key at want: populated 0
// once a killed cgroup is empty, frozen 1 or 0 once a freeze or thaw is
// complete, for at most c.wait.Total. The kernel wakes a poll(2) of the
// file for POLLPRI whenever its values change, so the wait reads the file
// again only then. It is poll and not inotify: kernfs wakes pollers at
// the change itself and sends inotify's notices later, from a workqueue,
// which on a busy machine costs milliseconds. A read records which change
// the descriptor has seen, and poll compares with the latest, so a change
// between the read and the poll is never missed. Each poll is bounded by
// c.wait.Max all the same, for a file that never notifies (a fake
// cgroupfs in a test: an ordinary file never reports POLLPRI).
func (c *v2Cgroup) waitEvent(key string, want uint64) error {
	file := c.file("cgroup.events")
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("cgroup: open %s: %w", file, cause(err))
	}
	defer f.Close()
	deadline := time.Now().Add(c.wait.Total)
	buf := make([]byte, 256)
	for {
		n, err := f.ReadAt(buf, 0)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("cgroup: read %s: %w", file, cause(err))
		}
		m, err := parseKeyed(file, buf[:n])
		if err != nil {
			return err
		}
		got, ok := m[key]
		switch {
		case !ok:
			return fmt.Errorf("cgroup: %s has no %q line", file, key)
		case got == want:
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("cgroup: %s: %q stays %d after %v, want %d", file, key, got, c.wait.Total, want)
		}
		if err := pollPri(f, min(left, c.wait.Max)); err != nil {
			return fmt.Errorf("cgroup: wait for a change of %s: %w", file, err)
		}
	}
}

// pollPri waits until f reports POLLPRI (or an error), which kernfs does
// on a change of a notifying file such as cgroup.events, or until timeout.
func pollPri(f *os.File, timeout time.Duration) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var perr error
	if err := rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLPRI}}
		ms := int(min(timeout.Milliseconds()+1, math.MaxInt32))
		_, perr = linux.IgnoringEINTRN(func() (int, error) { return unix.Poll(fds, ms) })
	}); err != nil {
		return err
	}
	return perr
}

// eventBuffer is how many notifications an OOM channel holds for a slow
// reader; beyond that they coalesce, and the reader learns the true number
// from OOMKills.
const eventBuffer = 16

// watchFile runs read on its own goroutine until it returns (its descriptor
// closed, or the cgroup gone), sending one notification per event it
// reports, and closes the returned channel then.
// f is the descriptor read blocks on: closing it when ctx ends is what
// makes read return, so it must be pollable (opened non-blocking).
func watchFile(ctx context.Context, f *os.File, read func(notify func(n uint64))) <-chan struct{} {
	ch := make(chan struct{}, eventBuffer)
	// The close error of an eventfd or inotify descriptor carries nothing
	// actionable, and no one is left to receive it.
	stop := context.AfterFunc(ctx, func() { _ = f.Close() })
	notify := func(n uint64) {
		for range n {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	go func() {
		defer close(ch)
		read(notify)
		if stop() {
			_ = f.Close()
		}
	}()
	return ch
}
