package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// killAll SIGKILLs every process that procs lists until it lists none.
//
// Each round freezes the cgroup first (when there is a freezer): a frozen
// task can neither fork a child we would miss nor exit and have its pid
// reused before the signal lands. SIGKILL stays pending on a frozen task, so
// the round thaws last and the tasks die on the way out of the freezer.
// Without a freezer the rounds still converge, because every round kills
// what the previous one missed.
func killAll(dir string, procs func() ([]int, error), freeze, thaw func() error, wait backoff) error {
	done, err := wait.poll(func() (bool, error) {
		pids, err := procs()
		if err != nil || len(pids) == 0 {
			return err == nil, err
		}
		if freeze != nil {
			if err := freeze(); err != nil {
				return false, errors.Join(err, thaw())
			}
			if pids, err = procs(); err != nil {
				return false, errors.Join(err, thaw())
			}
		}
		for _, pid := range pids {
			if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
				err = fmt.Errorf("cgroup: kill pid %d of %s: %w", pid, dir, err)
				if thaw != nil {
					err = errors.Join(err, thaw())
				}
				return false, err
			}
		}
		if thaw != nil {
			return false, thaw()
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	if !done {
		return fmt.Errorf("cgroup: kill %s: processes remain after %v", dir, wait.total)
	}
	return nil
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
