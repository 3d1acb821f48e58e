package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"time"
)

// oomBackoff is the restart delay asked for: none, so that the latency is
// what stack itself adds between the kill and running again.
const oomBackoff = time.Duration(0)

// benchOOM measures, over cfg.oomRuns restarts, the time from the kernel's
// OOM kill of a container's program to its successor's exec, with the
// least backoff: what stack adds between the kill and running again.
func (h *harness) benchOOM(ctx context.Context, res *results) {
	o := &oomResult{}
	res.oom = o
	if h.stack == nil {
		o.err = "stack is not available"
		return
	}
	// Doubling a string in the shell reaches the 16 MB limit in a few
	// milliseconds; the random word makes the command line the run's own.
	argv := []string{"/bin/sh", "-c", fmt.Sprintf("x=oom%d; while :; do x=$x$x; done", rand.Uint64())}
	b := h.newBatch(1, argv)
	// A zero backoff stays zero however often it doubles.
	extra := map[string]any{"memory": "16M", "restart": map[string]any{"policy": "on-oom", "backoff": oomBackoff.String()}}
	if err := h.stack.writeManifest(b, extra); err != nil {
		o.err = err.Error()
		return
	}
	t := newTracker(h.watcher, argv)
	defer t.stop()
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if err := h.stack.stack(ctx, b, "up", "-d"); err != nil {
		o.err = err.Error()
		return
	}
	err := h.oomLatencies(ctx, t, o)
	if entries, perr := h.stack.ps(ctx, b); perr == nil && len(entries) == 1 {
		o.oomKills = entries[0].OOMKills
	} else if err == nil {
		err = fmt.Errorf("stack ps: %v", perr)
	}
	down, cancelDown := teardown(ctx)
	defer cancelDown()
	if derr := h.stack.down(down, b); derr != nil && err == nil {
		err = fmt.Errorf("down: %w", derr)
	}
	if gerr := t.untilGone(ctx); gerr != nil && err == nil {
		err = fmt.Errorf("after down: %w", gerr)
	}
	if err != nil {
		o.err = err.Error()
	}
	progress("oom: %d restarts, median %s%s", len(o.latencies), ms(median(o.latencies)), errSuffix(err))
}

// oomLatencies pairs each SIGKILL exit with the next exec. A loss of
// events ends it at once, as it ends tracker.until: the pairs would be
// wrong, and the kill or exec awaited may never come.
func (h *harness) oomLatencies(ctx context.Context, t *tracker, o *oomResult) error {
	var killedAt time.Duration
	for {
		if err := t.watch.lostErr(); err != nil {
			return fmt.Errorf("wait for %d OOM restarts (saw %d): %w; the run is void", h.cfg.oomRuns, len(o.latencies), err)
		}
		if len(o.latencies) >= h.cfg.oomRuns {
			return nil
		}
		select {
		case <-t.watch.lost:
		case ev := <-t.watch.events:
			t.take(ev)
			switch {
			case !ev.exec && ev.signal == int(syscall.SIGKILL):
				killedAt = ev.at
			case !ev.exec:
				return fmt.Errorf("the program ended without the OOM killer's SIGKILL (signal %d)", ev.signal)
			case killedAt != 0:
				o.latencies = append(o.latencies, ev.at-killedAt)
				killedAt = 0
			}
		case <-ctx.Done():
			return fmt.Errorf("wait for %d OOM restarts (saw %d): %w", h.cfg.oomRuns, len(o.latencies), ctx.Err())
		}
	}
}
