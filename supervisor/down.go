package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/stack-containers/stack/cgroup"
	"github.com/stack-containers/stack/internal/linux"
	"github.com/stack-containers/stack/network"
	"github.com/stack-containers/stack/runtime"
)

// Down stops the named stack and removes every trace of it: cgroups,
// layers, logs and state. If its supervisor is alive, Down asks it to stop
// (SIGTERM) and waits for it to let go of the stack's lock, killing it if
// it is stuck (see stopHolder); if it is gone, Down stops and removes what
// the state file lists by itself. A stack that does not exist is not an
// error; Down may run any number of times.
func Down(ctx context.Context, cfg Config, name string) error {
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	paths, err := PathsOf(cfg.StateDir, name)
	if err != nil {
		return err
	}
	if _, err := os.Stat(paths.Dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	lock, err := stopHolder(ctx, paths)
	if err != nil {
		return fmt.Errorf("stack %q: %w", name, err)
	}
	errs := []error{clearStack(ctx, paths, cfg.Driver, cfg.Clock)}
	errs = append(errs, forgetStack(paths, lock))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stack %q: %w", name, err)
	}
	return nil
}

// supervisorSlack is how long a supervisor may take to stop beyond the
// longest stop_timeout of its containers before down kills it; it only
// matters if the supervisor is stuck.
const supervisorSlack = 30 * time.Second

// defaultGrace is the grace given to a supervisor whose containers are
// not known yet (it has written no state): manifest's default
// stop_timeout.
const defaultGrace = 10 * time.Second

// stopHolder takes the stack's lock from whoever holds it, and returns it.
// A supervisor holding it is asked to stop (SIGTERM), and killed if it has
// not let go well after the longest grace period of its containers; a down
// holding it is waited for, since it ends by itself. The holder is the one
// the lock file names, else the supervisor the state names, so that a down
// never waits on a lock without a deadline: not while an up clears an
// earlier run's state (which names that run's dead supervisor), nor before
// an up has written any state. A holder is named with its start time, so a
// stale pid is never signalled; a new holder (an up that got the lock
// first) is stopped in its turn.
//
// A holder lets go of the lock as it ends, so the lock is tried again the
// moment a known holder exits (a pidfd, in ended); the tick is for a
// holder not known yet, or one that let go and lives on.
func stopHolder(ctx context.Context, paths Paths) (*stackLock, error) {
	var (
		stopping Process // the supervisor asked to stop
		kill     <-chan time.Time
	)
	tick := time.NewTicker(lockPoll)
	defer tick.Stop()
	for {
		lock, err := tryLock(paths.Dir, roleDown)
		if !errors.Is(err, errLocked) {
			return lock, err
		}
		h, known := readHolder(paths.Dir)
		// The state is read only when needed, and once a round: it lists
		// every container, and the supervisor is busy stopping them
		// meanwhile.
		state := sync.OnceValues(func() (*State, error) { return ReadState(paths) })
		if !known {
			if st, err := state(); err == nil && st.Supervisor.Alive() {
				h, known = lockHolder{Process: st.Supervisor, Role: roleSupervisor}, true
			}
		}
		if known && h.Role == roleSupervisor && h.Process != stopping {
			grace := defaultGrace
			if st, err := state(); err == nil {
				grace = 0
				for _, c := range st.Containers {
					grace = max(grace, c.StopTimeout)
				}
			}
			if err := h.Signal(syscall.SIGTERM); err != nil {
				return nil, fmt.Errorf("ask the supervisor to stop: %w", err)
			}
			stopping = h.Process
			kill = time.After(grace + supervisorSlack)
		}
		watch, unwatch := context.WithCancel(ctx)
		var gone <-chan struct{}
		if known {
			gone = ended(watch, h.Process)
		}
		var waitErr error
		select {
		case <-ctx.Done():
			waitErr = fmt.Errorf("wait for the lock of %s: %w", paths.Dir, context.Cause(ctx))
		case <-kill:
			// Stuck: killed, and the caller cleans up from the state as
			// after any dead supervisor.
			kill = nil
			if serr := stopping.Signal(syscall.SIGKILL); serr != nil {
				waitErr = fmt.Errorf("kill the stuck supervisor: %w", serr)
			}
		case <-gone:
		case <-tick.C:
		}
		unwatch()
		if waitErr != nil {
			return nil, waitErr
		}
	}
}

// lockPoll is how often stopHolder tries the lock while its holder is not
// known, or lives on without it.
const lockPoll = 20 * time.Millisecond

// clearStack stops and removes what the state of an earlier run lists:
// its containers (stop signal, grace, kill), cgroups and layers; then it
// removes that state and the logs. The caller holds the stack's lock, so
// no supervisor of the stack is alive.
func clearStack(ctx context.Context, paths Paths, drv cgroup.Driver, clock Clock) error {
	st, err := ReadState(paths)
	if errors.Is(err, os.ErrNotExist) {
		return removeStateDir(paths, supervisorLog)
	}
	if err != nil {
		return err
	}
	var errs []error
	if !st.Ended {
		errs = append(errs, stopOrphans(ctx, st, drv, clock))
	}
	errs = append(errs, inParallel(len(st.Containers), func(i int) error {
		c := st.Containers[i]
		return wrapName(c.Name, errors.Join(drv.Load(c.Cgroup).Remove(), runtime.RemoveLayer(c.LayerDir)))
	}))
	if st.Network != nil {
		errs = append(errs, network.Remove(st.Network.ID))
	}
	errs = append(errs, drv.Load(st.Cgroup).Destroy(), drv.Prune(path.Dir(st.Cgroup)))
	if err := errors.Join(errs...); err != nil {
		// The state stays, so that a later down can finish the job.
		return err
	}
	return removeStateDir(paths, supervisorLog)
}

// stopOrphans stops the containers that outlived their supervisor, in
// reverse dependency order, with the same signal and grace as Stop.
func stopOrphans(ctx context.Context, st *State, drv cgroup.Driver, clock Clock) error {
	deps := make(map[string][]string, len(st.Containers))
	for _, c := range st.Containers {
		deps[c.Name] = c.After
	}
	g, err := newGraph(deps)
	if err != nil {
		return err
	}
	return g.reversed().walk(ctx, len(deps)+1, func(ctx context.Context, name string) error {
		c := st.Container(name)
		if c.Process.Alive() {
			discarded, err := signalDiscarded(c.Process.Pid, c.StopSignal, c.PIDNamespace)
			if err == nil && !discarded {
				if err := c.Process.Signal(c.StopSignal); err != nil {
					return wrapName(name, err)
				}
				waitGone(ctx, c.Process, clock.After(c.StopTimeout))
			}
		}
		return wrapName(name, drv.Load(c.Cgroup).Kill())
	})
}

// waitGone returns once p has ended, timeout fires or ctx ends.
func waitGone(ctx context.Context, p Process, timeout <-chan time.Time) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	select {
	case <-ended(ctx, p):
	case <-ctx.Done():
	case <-timeout:
	}
}

// ended returns a channel that is closed once p has ended, at once if p is
// not the recorded process any more. p is not a child of this process, so
// it cannot be waited for: a pidfd can, becoming readable when p exits.
// Without pidfds (Linux before 5.10) /proc is read every procPoll instead.
// The watch ends with ctx, leaving the channel open.
func ended(ctx context.Context, p Process) <-chan struct{} {
	ch := make(chan struct{})
	if p.Pid <= 0 {
		close(ch)
		return ch
	}
	pfd, err := linux.OpenPidfd(p.Pid)
	switch {
	case errors.Is(err, os.ErrProcessDone):
		close(ch)
		return ch
	case err == nil && !p.Alive():
		// Checked once the pidfd holds the pid, so that a process that
		// reused it is not waited for in p's place.
		pfd.Close()
		close(ch)
		return ch
	}
	go func() {
		if err == nil {
			werr := pfd.Wait(ctx)
			pfd.Close()
			switch {
			case werr == nil:
				close(ch)
				return
			case ctx.Err() != nil:
				return
			}
			// A pidfd that cannot be polled: read /proc as without one.
		}
		tick := time.NewTicker(procPoll)
		defer tick.Stop()
		for p.Alive() {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
		close(ch)
	}()
	return ch
}

// procPoll is how often ended reads /proc where it has no pidfd.
const procPoll = 20 * time.Millisecond

// removeStateDir removes everything of the stack's state directory but its
// lock file, which only the lock's holder removes, last (forgetStack), and
// the files named in keep.
func removeStateDir(paths Paths, keep ...string) error {
	entries, err := os.ReadDir(paths.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read state directory: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if e.Name() == lockFile || slices.Contains(keep, e.Name()) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(paths.Dir, e.Name())); err != nil {
			errs = append(errs, fmt.Errorf("remove state: %w", err))
		}
	}
	return errors.Join(errs...)
}

// forgetStack removes the rest of the state directory, then the lock file
// and the lock, then the directory. An up that got in after the lock file
// went keeps the directory it has just made again.
func forgetStack(paths Paths, lock *stackLock) error {
	if err := removeStateDir(paths); err != nil {
		return errors.Join(err, lock.release())
	}
	if err := lock.removeAndRelease(); err != nil {
		return err
	}
	err := os.Remove(paths.Dir)
	if err == nil || errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTEMPTY) {
		return nil
	}
	return fmt.Errorf("remove state directory: %w", err)
}
