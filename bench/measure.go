package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// tracker follows the processes of one batch through the watcher's events.
type tracker struct {
	watch *watch
	stop  func()
	// alive are the pids that exec'd the batch's command and have not
	// exited yet.
	alive     map[int]bool
	execs     int
	firstExec time.Duration
	lastExec  time.Duration
	// exits are the exits seen, in order.
	exits []procEvent
}

func newTracker(w *procWatcher, argv []string) *tracker {
	wa, stop := w.watch(argv)
	return &tracker{watch: wa, stop: stop, alive: map[int]bool{}}
}

func (t *tracker) take(ev procEvent) {
	if ev.exec {
		if !t.alive[ev.pid] {
			t.alive[ev.pid] = true
			if t.execs == 0 || ev.at < t.firstExec {
				t.firstExec = ev.at
			}
			t.execs++
			t.lastExec = max(t.lastExec, ev.at)
		}
		return
	}
	delete(t.alive, ev.pid)
	t.exits = append(t.exits, ev)
}

// lastExit is the time of the last exit seen; 0 for none.
func (t *tracker) lastExit() time.Duration {
	var last time.Duration
	for _, ev := range t.exits {
		last = max(last, ev.at)
	}
	return last
}

// until takes events until done says so or ctx ends. Once events of the
// watch are lost it returns at once: the events done waits for may be
// among them, and the run is void anyway. That is checked before done, so
// that a run that lost events is never taken for a whole one.
func (t *tracker) until(ctx context.Context, what string, done func() bool) error {
	for {
		if err := t.watch.lostErr(); err != nil {
			return fmt.Errorf("wait for %s (%d started, %d alive): %w; the run is void", what, t.execs, len(t.alive), err)
		}
		if done() {
			return nil
		}
		select {
		case ev := <-t.watch.events:
			t.take(ev)
		case <-t.watch.lost:
		case <-ctx.Done():
			return fmt.Errorf("wait for %s (%d started, %d alive): %w", what, t.execs, len(t.alive), ctx.Err())
		}
	}
}

// untilExecs waits until n processes have exec'd the command.
func (t *tracker) untilExecs(ctx context.Context, n int) error {
	return t.until(ctx, fmt.Sprintf("%d programs to start", n), func() bool { return t.execs >= n })
}

// untilGone waits until every process that exec'd has exited: a system
// whose teardown returned with its containers still alive leaks them.
func (t *tracker) untilGone(ctx context.Context) error {
	return t.until(ctx, "every program to exit", func() bool { return len(t.alive) == 0 })
}

// sleepArgv is a command line no other process on the machine runs: a
// sleep of a random length of over ten days.
func sleepArgv() []string {
	return []string{"/bin/sleep", strconv.Itoa(1_000_000 + rand.IntN(8_000_000))}
}

// measureStart starts b with sys, times it to all running, then times its
// teardown and checks that every container's program is gone.
func measureStart(ctx context.Context, w *procWatcher, sys system, b *batch, timeout time.Duration) (running, down time.Duration, err error) {
	t := newTracker(w, b.argv)
	defer t.stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	t0 := monotonic()
	err = sys.start(ctx, b)
	returned := monotonic()
	if err == nil {
		err = t.untilExecs(ctx, b.n)
	}
	if err != nil {
		return 0, 0, cleanUp(ctx, sys, b, t, err)
	}
	running = max(returned, t.lastExec) - t0

	t1 := monotonic()
	err = sys.down(ctx, b)
	down = monotonic() - t1
	if err != nil {
		return 0, 0, fmt.Errorf("down: %w", err)
	}
	if err := t.untilGone(ctx); err != nil {
		return 0, 0, fmt.Errorf("after down: %w", err)
	}
	return running, down, nil
}

// measureRun times b with sys from launch until every container ended,
// then tears it down untimed.
func measureRun(ctx context.Context, sys system, b *batch, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t0 := monotonic()
	err := sys.run(ctx, b)
	d := monotonic() - t0
	down, cancelDown := teardown(ctx)
	defer cancelDown()
	if derr := sys.down(down, b); err == nil && derr != nil {
		err = fmt.Errorf("down: %w", derr)
	}
	return d, err
}

// teardown is the context of a cleanup: not cancelled with ctx, so that
// Ctrl-C or the measurement's deadline does not cut it short, but bounded
// by a deadline of its own, so that a peer whose teardown hangs cannot
// hang the run.
func teardown(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
}

// cleanUp tears down after a failed measurement and keeps its first error.
func cleanUp(ctx context.Context, sys system, b *batch, t *tracker, err error) error {
	ctx, cancel := teardown(ctx)
	defer cancel()
	if derr := sys.down(ctx, b); derr != nil {
		return fmt.Errorf("%w (and down: %v)", err, derr)
	}
	// The exits that would show every program gone may be among the lost
	// events: after a loss there is nothing to wait for.
	if errors.Is(err, errEventsLost) {
		return err
	}
	gone, cancelGone := context.WithTimeout(ctx, 30*time.Second)
	defer cancelGone()
	if gerr := t.untilGone(gone); gerr != nil {
		return fmt.Errorf("%w (and after down: %v)", err, gerr)
	}
	return err
}

// median of durations or numbers; 0 for none.
func median[T ~int64 | ~float64](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// rotate returns xs started at offset r, so that the order of the compared
// systems changes each round and drift (a compile starting) hits them alike.
func rotate[T any](xs []T, r int) []T {
	if len(xs) == 0 {
		return nil
	}
	r %= len(xs)
	return append(slices.Clone(xs[r:]), xs[:r]...)
}
