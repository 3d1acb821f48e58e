package supervisor

import (
	"errors"
	"path"

	"github.com/stack-containers/stack/runtime"
)

// Releasing what a stack held once its run loops have returned.

// finishWhenEnded waits until no container runs or is to be restarted,
// then removes what the stack held but keeps its state and logs.
func (s *Supervisor) finishWhenEnded() {
	s.loops.Wait()
	s.result = s.failures()
	if err := s.release(false); err != nil {
		s.warn(err)
	}
	close(s.done)
}

// failures joins why containers ended in failure.
func (s *Supervisor) failures() error {
	var errs []error
	for _, name := range s.graph.names() {
		c := s.ctrs[name]
		c.mu.Lock()
		if c.failure != nil {
			errs = append(errs, c.failure)
		}
		c.mu.Unlock()
	}
	return errors.Join(errs...)
}

// release frees what the stack holds once its run loops have returned:
// the OOM watchers, the cgroups, the layers, the logs and the lock. It
// keeps the state (marked ended) and the logs for ps and logs, unless
// forget, when the whole state directory goes too.
func (s *Supervisor) release(forget bool) error {
	s.loops.Wait()
	if s.unwatch != nil {
		s.unwatch()
	}
	s.watchers.Wait()
	// Nothing changes the state any more but the last write below, which
	// no snapshot of the writer's may follow.
	if s.state != nil {
		s.state.close()
	}
	var errs []error
	// Once the containers are gone; see rootfs.go.
	defer s.roots.release()
	for _, name := range s.graph.names() {
		c := s.ctrs[name]
		if c == nil {
			continue
		}
		if c.cg != nil {
			errs = append(errs, wrapName(name, errors.Join(c.cg.Kill(), c.cg.Destroy())))
		}
		errs = append(errs, wrapName(name, runtime.RemoveLayer(c.layer)))
	}
	// The containers are gone, and with their namespaces their ends of
	// the veth pairs.
	errs = append(errs, s.removeNetwork(s.netPlan))
	if s.parent != nil {
		// STACK_CGROUP_PARENT goes too once no other stack uses it:
		// stack made it, and leaves nothing behind.
		errs = append(errs, s.parent.Destroy(), s.cfg.Driver.Prune(path.Dir(s.parent.Path())))
	}
	if s.logs != nil {
		errs = append(errs, s.logs.Close())
	}
	if forget {
		errs = append(errs, forgetStack(s.paths, s.lock))
		return errors.Join(errs...)
	}
	if s.state != nil {
		s.state.change(func(st *State) { st.Ended = true })
		errs = append(errs, s.state.flush())
	}
	errs = append(errs, s.lock.release())
	return errors.Join(errs...)
}
