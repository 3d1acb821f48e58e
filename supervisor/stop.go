package supervisor

import (
	"context"
	"syscall"

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
// kills PID 1.
//
// PID 1 is enough: the run loop empties the cgroup (waitRun's Kill) once
// it has reaped PID 1, which takes whatever else runs in it. With a pid
// namespace of its own there is usually nothing left by then: when PID 1
// dies the kernel SIGKILLs every other process of the namespace and reaps
// them before PID 1 can be waited for (zap_pid_ns_processes). Killing PID
// 1 through its pidfd (os.Process) costs one syscall where a cgroup kill on
// v1 freezes, lists and signals every process, then waits for the cgroup
// to empty, and the run loop's Kill would do all that again.
func (s *Supervisor) signalStop(c *container, r *run) {
	sig, grace := c.def.StopSignal, c.def.StopTimeout
	ownPIDNS := hasNamespace(c.def, manifest.NamespacePID)
	discarded, err := signalDiscarded(r.rc.Pid(), sig, ownPIDNS)
	switch {
	case err != nil:
		// /proc has no such process any more: it has just ended.
	case discarded:
		c.log.Event("stopping: PID 1 does not catch %v, killing it", signalName(int(sig)))
	default:
		c.log.Event("stopping (%v, then SIGKILL after %v)", signalName(int(sig)), grace)
		if err := r.rc.Signal(sig); err != nil {
			s.warn(err)
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
	// Signal's error names the container.
	if err := r.rc.Signal(syscall.SIGKILL); err != nil {
		s.warn(err)
	}
}
