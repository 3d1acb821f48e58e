package supervisor

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Supervision: each container's run loop, its restart policy, and OOM
// kills reported as they happen (doc.go, "Supervision").

// pid is the host pid of the current run's PID 1, or 0.
func (c *container) pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		return 0
	}
	return c.cur.rc.Pid()
}

// runLoop waits for each run of c to end and applies the restart policy,
// until the container ends for good or is stopped.
func (s *Supervisor) runLoop(c *container, r *run) {
	defer s.loops.Done()
	defer close(c.done)
	name := c.def.Name
	for {
		ending, err := s.waitRun(c, r)
		if err != nil {
			s.fail(c, err)
			s.state.update(name, func(cs *ContainerState) { cs.State = StateExited; cs.Process = Process{}; cs.Health = HealthNone })
			c.log.Event("%v", err)
			c.changeProgress(func(p *progress) { p.ended, p.exit = true, err.Error() })
			return
		}
		why := describeEnding(ending)
		c.log.Event("%s", why)
		d := c.restarter.Ended(ending)
		c.changeProgress(func(p *progress) {
			p.health = HealthNone
			p.completed = p.completed || (ending.Code == 0 && !ending.Signaled)
			if !d.Restart {
				p.ended, p.exit = true, why
			}
		})
		s.state.update(name, func(cs *ContainerState) {
			cs.Health = HealthNone
			code := ending.Code
			cs.ExitCode = &code
			cs.Process = Process{}
			cs.FinishedAt = time.Now()
			switch {
			case ending.Stopped:
				cs.State = StateStopped
			case d.Restart:
				cs.State = StateRestarting
			default:
				cs.State = StateExited
			}
		})
		if !d.Restart {
			if d.GaveUp {
				gaveUp := fmt.Sprintf("gave up after %d restarts", c.restarter.Restarts())
				c.log.Event("%s", gaveUp)
				why += "; " + gaveUp
			}
			if !ending.Stopped && ending.failed() {
				s.fail(c, fmt.Errorf("container %q: %s", name, why))
			}
			return
		}
		c.log.Event("restarting in %v (%s)", d.Delay, d.describe(c.def.Restart.MaxRetries))
		select {
		case <-s.cfg.Clock.After(d.Delay):
		case <-c.stop:
			s.state.update(name, func(cs *ContainerState) { cs.State = StateStopped })
			return
		}
		r, err = s.startRun(c)
		if errors.Is(err, errStopping) {
			s.state.update(name, func(cs *ContainerState) { cs.State = StateStopped })
			return
		}
		if err != nil {
			c.changeProgress(func(p *progress) { p.ended, p.exit = true, "failed to restart: "+err.Error() })
			c.log.Event("restart failed: %v", err)
			s.fail(c, err)
			s.state.update(name, func(cs *ContainerState) { cs.State = StateExited })
			return
		}
	}
}

// waitRun waits for run r of c to end, collects its last output and tells
// how it ended.
func (s *Supervisor) waitRun(c *container, r *run) (Ending, error) {
	name := c.def.Name
	status, werr := r.rc.Wait()
	r.checks.stop()
	// PID 1 is gone; without a pid namespace its children may not be, and
	// they hold the output pipes open: the cgroup is emptied before the
	// captures are awaited.
	kerr := c.cg.Kill()
	if kerr != nil {
		kerr = fmt.Errorf("container %q: %w", name, kerr)
	}
	lerr := c.log.Wait()
	perr := r.closePipes()
	oomAfter, oerr := c.cg.OOMKills()
	c.mu.Lock()
	stopped := c.stopping
	c.cur = nil
	c.mu.Unlock()
	if oerr == nil {
		s.reportOOM(c, r, oomAfter)
	}
	for _, err := range []error{lerr, perr} {
		if err != nil {
			s.warn(fmt.Errorf("container %q: %w", name, err))
		}
	}
	if err := errors.Join(werr, kerr, oerr); err != nil {
		return Ending{}, err
	}
	return Ending{
		Code:     status.Code,
		Signaled: status.Signaled,
		OOM:      oomAfter > r.oomBefore,
		Stopped:  stopped,
	}, nil
}

// describeEnding is the event line for the end of a run.
func describeEnding(e Ending) string {
	msg := fmt.Sprintf("exited with status %d", e.Code)
	if e.Signaled {
		msg += fmt.Sprintf(" (killed by %v)", signalName(e.Code-128))
	}
	if e.OOM {
		msg += ", OOM-killed"
	}
	return msg
}

// fail records why the container's end counts as a failure of the stack.
func (s *Supervisor) fail(c *container, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failure == nil {
		c.failure = err
	}
}

// watchOOM reports each OOM kill in c's cgroup as it happens, rather than
// only when the run that suffered it ends (the victim may not be PID 1).
func (s *Supervisor) watchOOM(ctx context.Context, c *container) error {
	events, err := c.cg.OOMEvents(ctx)
	if err != nil {
		return fmt.Errorf("container %q: %w", c.def.Name, err)
	}
	s.watchers.Add(1)
	go func() {
		defer s.watchers.Done()
		for range events {
			// The kernel signals the OOM situation before it picks and
			// kills a victim, so the count may rise a moment later.
			for wait := time.Millisecond; wait < time.Second; wait *= 2 {
				// Between runs (cur nil) the kill is the ended run's,
				// which its own end reports.
				c.mu.Lock()
				r := c.cur
				c.mu.Unlock()
				n, err := c.cg.OOMKills()
				if err != nil || r == nil || s.reportOOM(c, r, n) {
					break
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
	}()
	return nil
}

// reportOOM writes an event when the cgroup's OOM-kill count n has risen
// during run r and r is not counted yet, and reports whether it did.
//
// A container's OOM kills count the runs the OOM killer struck, at most one
// per run (SPEC's "OOM kills" in ps; one event per OOM kill of the
// container). On cgroup v2, memory.oom.group makes one OOM kill the whole
// container, and the count is that already. On v1 there is no group kill:
// the kernel may kill two of the container's processes in one OOM (the
// shell and the child filling its pipe), or one while the rest of the run
// goes on, and the raw count would tell processes, not containers.
//
// The watcher and the end of a run both report; oomMu is held until the
// event is written, so that the end of the run that suffered a kill finds
// its event written rather than under way, and logs its own after it.
func (s *Supervisor) reportOOM(c *container, r *run, n uint64) bool {
	c.oomMu.Lock()
	defer c.oomMu.Unlock()
	c.mu.Lock()
	fresh := n > r.oomBefore && !r.oomCounted
	if fresh {
		r.oomCounted = true
		c.oomKills++
	}
	kills := c.oomKills
	c.mu.Unlock()
	if !fresh {
		return false
	}
	s.state.update(c.def.Name, func(cs *ContainerState) { cs.OOMKills = kills })
	st, err := c.cg.Stats()
	if err != nil {
		c.log.Event("OOM-killed")
		return true
	}
	used := st.MemoryPeak
	if used == 0 {
		used = st.MemoryUsage
	}
	c.log.Event("OOM-killed at %s/%s", FormatBytes(used), FormatBytes(st.MemoryLimit))
	return true
}
