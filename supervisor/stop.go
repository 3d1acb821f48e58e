package supervisor

import (
	"context"
	"fmt"

	"github.com/stack-containers/stack/manifest"
)

// Stopping: reverse dependency order, stop signal, grace period, kill
// (doc.go, "Stopping").

// Stop stops the stack: each container gets its stop signal, then its
// stop_timeout to end, then SIGKILL; dependents stop before what they
// depend on, independent containers at once. No container is restarted
// once Stop has begun. It returns once every container has stopped; a
// second call waits for the first.
func (s *Supervisor) Stop() {
	s.stopOnce.Do(func() {
		// The walk cannot fail: stopContainer reports its problems itself.
		_ = s.graph.reversed().walk(context.Background(), len(s.ctrs)+1, func(_ context.Context, name string) error {
			if c := s.ctrs[name]; c != nil {
				s.stopContainer(c)
			}
			return nil
		})
	})
}

// Kill ends the grace periods of a Stop under way (or about to begin) at
// once: every container still running is killed.
func (s *Supervisor) Kill() {
	s.killOnce.Do(func() { close(s.kill) })
}

func (s *Supervisor) stopContainer(c *container) {
	c.mu.Lock()
	if !c.stopping {
		c.stopping = true
		close(c.stop)
		// A container waiting for a condition of this one gives up.
		close(c.changed)
		c.changed = make(chan struct{})
	}
	looping, r := c.looping, c.cur
	c.mu.Unlock()
	if !looping {
		return
	}
	if r != nil {
		// A check under way is killed: none keeps the stop waiting.
		r.checks.stop()
		s.signalStop(c, r)
	}
	<-c.done
}

// signalStop sends c its stop signal and waits out its grace period, then
// kills what is left in its cgroup.
func (s *Supervisor) signalStop(c *container, r *run) {
	sig, grace := c.def.StopSignal, c.def.StopTimeout
	discarded, err := signalDiscarded(r.rc.Pid(), sig, hasNamespace(c.def, manifest.NamespacePID))
	switch {
	case err != nil:
		// /proc has no such process any more: it has just ended.
	case discarded:
		c.log.Event("stopping: PID 1 does not catch %v, killing it", signalName(int(sig)))
	default:
		c.log.Event("stopping (%v, then SIGKILL after %v)", signalName(int(sig)), grace)
		if err := r.rc.Signal(sig); err != nil {
			s.warn(fmt.Errorf("container %q: %w", c.def.Name, err))
		}
		select {
		case <-c.done:
			return
		case <-s.kill:
			c.log.Event("killing it at once: asked to stop a second time")
		case <-s.cfg.Clock.After(grace):
			c.log.Event("still running after %v, killing it", grace)
		}
	}
	if err := c.cg.Kill(); err != nil {
		s.warn(fmt.Errorf("container %q: %w", c.def.Name, err))
	}
}
