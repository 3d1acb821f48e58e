package cgroup

import (
	"context"
	"errors"
	"fmt"
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
func killAll(dir string, procs func() ([]int, error), freeze, thaw func() error, wait backoff) error {
	deadline := time.Now().Add(wait.total)
	done, err := wait.poll(func() (bool, error) {
		pids, err := procs()
		if err != nil || len(pids) == 0 {
			return err == nil, err
		}
		held, err := killRound(dir, procs, freeze, thaw)
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
		return fmt.Errorf("cgroup: kill %s: processes remain after %v", dir, wait.total)
	}
	return nil
}

// killRound SIGKILLs what procs lists, frozen if it can be, and returns the
// pidfds of the processes it signalled, for the caller to wait on and
// close (even on error).
//
// A pid read from cgroup.procs could be freed and reused by a process
// elsewhere before the signal: frozen, no listed process can exit, so the
// list stays true; without a freezer each pidfd is checked against a second
// list read after it was opened. A pid listed both before and after its
// pidfd was opened is the pidfd's process, in the cgroup: a pid names one
// process at a time, and the pidfd's is the one that had it at the open.
// On a kernel without pidfds the processes are signalled by pid, and the
// caller's pauses take the place of the wait.
func killRound(dir string, procs func() ([]int, error), freeze, thaw func() error) (held []*linux.Pidfd, err error) {
	if freeze != nil {
		if err := freeze(); err != nil {
			return nil, errors.Join(err, thaw())
		}
		defer func() { err = errors.Join(err, thaw()) }()
	}
	pids, err := procs()
	if err != nil {
		return nil, err
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
// complete. The kernel notifies every change of the file's values
// (inotify IN_MODIFY, as for memory.events in OOMEvents), so the wait reads
// the file again only when it has changed, for at most c.wait.total.
// Reading after the watch is in place means no change can fall between
// the two; a notice may come late (kernfs sends them from a workqueue),
// which only costs a read that finds nothing new.
func (c *v2Cgroup) waitEvent(key string, want uint64) error {
	file := c.file("cgroup.events")
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return fmt.Errorf("cgroup: inotify for %s: %w", file, err)
	}
	// Non-blocking, so that the runtime poller owns it and the deadline
	// below ends a pending read.
	in := os.NewFile(uintptr(fd), "inotify:"+file)
	defer in.Close()
	if _, err := unix.InotifyAddWatch(fd, file, unix.IN_MODIFY); err != nil {
		return fmt.Errorf("cgroup: watch %s: %w", file, err)
	}
	if err := in.SetReadDeadline(time.Now().Add(c.wait.total)); err != nil {
		return fmt.Errorf("cgroup: watch %s: %w", file, err)
	}
	buf := make([]byte, 16*inotifyEventSize)
	for {
		got, err := keyedValue(file, key)
		if err != nil || got == want {
			return err
		}
		if _, err := in.Read(buf); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return fmt.Errorf("cgroup: %s: %q stays %d after %v, want %d", file, key, got, c.wait.total, want)
			}
			return fmt.Errorf("cgroup: watch %s: %w", file, err)
		}
	}
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
