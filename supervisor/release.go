package supervisor

import (
	"errors"
	"path"
	goruntime "runtime"

	"golang.org/x/sync/errgroup"

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
	errs = append(errs, s.releaseContainers())
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

// releaseLimit is how many containers are removed at once. The work is
// the kernel's (cgroup rmdir, ext4 unlink and rmdir of a layer, with
// discards), done in the calling thread: a few at once keep both of a
// small machine's cores busy while one waits on a lock (cgroup_mutex, a
// directory's i_rwsem) or the disk; more only queue there and cost a
// thread each.
func releaseLimit() int { return max(4, 2*goruntime.GOMAXPROCS(0)) }

// releaseContainers kills and removes each container's cgroup and removes
// its layer, several containers at once: nothing orders them once every
// run loop has returned. A cgroup is normally empty by now (its run loop
// emptied it when PID 1 ended), and Remove then only removes it; a process
// that joined it since is killed first.
func (s *Supervisor) releaseContainers() error {
	names := s.graph.names()
	return inParallel(len(names), func(i int) error {
		c := s.ctrs[names[i]]
		if c == nil {
			return nil
		}
		var err error
		if c.cg != nil {
			err = c.cg.Remove()
		}
		return wrapName(names[i], errors.Join(err, runtime.RemoveLayer(layerDir(c.dir))))
	})
}

// inParallel calls fn(0) to fn(n-1), releaseLimit at a time, and joins
// their errors in that order.
func inParallel(n int, fn func(i int) error) error {
	errs := make([]error, n)
	var g errgroup.Group
	g.SetLimit(releaseLimit())
	for i := range n {
		// Every error is kept, in order: none stops the others.
		g.Go(func() error {
			errs[i] = fn(i)
			return nil
		})
	}
	g.Wait()
	return errors.Join(errs...)
}
