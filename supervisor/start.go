package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/stack-containers/stack/cgroup"
	"github.com/stack-containers/stack/internal/linux"
	"github.com/stack-containers/stack/manifest"
	"github.com/stack-containers/stack/network"
	"github.com/stack-containers/stack/runtime"
	"github.com/stack-containers/stack/supervisor/logs"
)

// Starting a stack: lock, clear, record and create, start (doc.go,
// "Phases of a start"), and undoing a start that failed.

// descriptorsPerContainer is what the supervisor holds open for a running
// container, with room to spare: its output pipes, its pidfds, its cgroup's
// files and its log file.
const descriptorsPerContainer = 8

// startsInit reports whether the stack will start the init program soon:
// for a container with a user namespace, or the first health check. Most
// containers are built without it (runtime's inthread.go), and a stack
// that never runs it need not copy it into memory (InitProgram.Preload):
// then `stack exec` pays the copy, once.
func startsInit(st *manifest.Stack) bool {
	for _, c := range st.Containers {
		if c.Healthcheck != nil || slices.Contains(c.Namespaces, manifest.NamespaceUser) {
			return true
		}
	}
	return false
}

// Start checks, locks and starts a stack, and returns once every container
// runs (phases 1 to 4 of doc.go). If a container fails to start, the ones
// started are stopped, everything is removed again, and the error names the
// container and the cause.
func Start(ctx context.Context, st *manifest.Stack, cfg Config) (*Supervisor, error) {
	if startsInit(st) {
		cfg.Init.Preload()
	}
	// A running container holds some six descriptors here; the table
	// grows once, now, not three times during the start of fifty. Too
	// few only costs that time. Under up -d it has room already: it was
	// grown before the supervisor's execve (fdtable.go).
	_ = linux.ReserveDescriptors(64 + descriptorsPerContainer*len(st.Containers))
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Errors == nil {
		cfg.Errors = os.Stderr
	}
	if cfg.StartLimit <= 0 {
		cfg.StartLimit = DefaultStartLimit()
	}
	paths, err := PathsOf(cfg.StateDir, st.Name)
	if err != nil {
		return nil, err
	}
	g, err := stackGraph(st)
	if err != nil {
		return nil, fmt.Errorf("stack %q: %w", st.Name, err)
	}
	lock, err := lockForStart(ctx, paths)
	if errors.Is(err, errLocked) {
		return nil, fmt.Errorf("stack %q is %w", st.Name, ErrRunning)
	}
	if err != nil {
		return nil, fmt.Errorf("stack %q: %w", st.Name, err)
	}
	// What an earlier run left is cleared before anything else: should
	// that fail, its state stays for a later down to finish the job.
	if err := clearStack(ctx, paths, cfg.Driver, cfg.Clock); err != nil {
		if ctx.Err() != nil {
			// Stopped while clearing (by a down, say), which leaves the
			// rest to whoever stopped it.
			err = context.Cause(ctx)
		}
		err = fmt.Errorf("stack %q: clean up the previous run: %w", st.Name, err)
		return nil, errors.Join(err, lock.release())
	}
	s := &Supervisor{
		stack: st, cfg: cfg, paths: paths, graph: g, lock: lock,
		ctrs: map[string]*container{},
		kill: make(chan struct{}),
		done: make(chan struct{}),
	}
	if err := s.prepare(ctx); err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("start interrupted: %w", context.Cause(ctx))
		}
		return nil, s.abort(fmt.Errorf("stack %q: %w", st.Name, err))
	}
	if err := g.walk(ctx, cfg.StartLimit, s.startFirst); err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("stack %q: start interrupted: %w", st.Name, context.Cause(ctx))
		}
		return nil, s.abort(err)
	}
	// Up -d reports the stack up as soon as Start returns, and ps right
	// after must show every container running: the writer may not have
	// caught up yet.
	if err := s.state.flush(); err != nil {
		return nil, s.abort(fmt.Errorf("stack %q: %w", st.Name, err))
	}
	go s.finishWhenEnded()
	return s, nil
}

// unknownHolderWait bounds how long a start waits for the holder of the
// lock to record itself (see stackLock.record): it does so right after it
// takes the lock, unless its disk is full; the bound is generous, since on
// a loaded machine "right after" may be a while.
const unknownHolderWait = 10 * time.Second

// lockForStart takes the stack's lock for a supervisor. A down that holds
// it is waited for, since it ends by itself and leaves the stack free: an
// up right after a down, or racing one, starts rather than being told that
// a stack being torn down is running. A supervisor that holds it, or a
// holder that does not say who it is, is errLocked.
func lockForStart(ctx context.Context, paths Paths) (*stackLock, error) {
	unknownSince := time.Time{}
	for {
		lock, err := tryLock(paths.Dir, roleSupervisor)
		if !errors.Is(err, errLocked) {
			return lock, err
		}
		h, known := readHolder(paths.Dir)
		switch {
		case known && h.Role != roleDown:
			return nil, errLocked
		case !known && unknownSince.IsZero():
			unknownSince = time.Now()
		case !known && time.Since(unknownSince) > unknownHolderWait:
			return nil, errLocked
		case known:
			unknownSince = time.Time{}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for a down of the stack to end: %w", context.Cause(ctx))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// prepare writes the initial state, opens the logs and creates the
// cgroups.
func (s *Supervisor) prepare(ctx context.Context) error {
	self, err := processOf(os.Getpid())
	if err != nil {
		return err
	}
	names := s.graph.names()
	// Made first: they are no part of the run, and outlive it.
	if err := s.makeMountSources(); err != nil {
		return err
	}
	state := State{
		Stack:      s.stack.Name,
		File:       s.stack.File,
		Supervisor: self,
		Cgroup:     s.cfg.CgroupParent + "/" + s.stack.Name,
	}
	s.parent = s.cfg.Driver.Load(state.Cgroup)
	s.netPlan = s.networkPlan()
	state.Network = s.netPlan
	for _, name := range names {
		def := s.stack.Containers[name]
		dir, err := newContainerDir(s.paths, name)
		if err != nil {
			return err
		}
		s.ctrs[name] = &container{
			def:       def,
			restarter: NewRestarter(def.Restart, s.cfg.Clock),
			dir:       dir,
			done:      make(chan struct{}),
			stop:      make(chan struct{}),
			changed:   make(chan struct{}),
		}
	}
	// Images are pulled (and defaults taken from them) before anything of
	// the stack exists, so that a pull that fails leaves nothing to undo.
	if err := s.resolveRoots(ctx); err != nil {
		return err
	}
	for _, name := range names {
		def := s.ctrs[name].def
		state.Containers = append(state.Containers, ContainerState{
			Name:         name,
			State:        StateCreated,
			Cgroup:       state.Cgroup + "/" + name,
			LayerDir:     layerDir(s.ctrs[name].dir),
			MemoryLimit:  def.Memory,
			StopSignal:   def.StopSignal,
			StopTimeout:  def.StopTimeout,
			PIDNamespace: hasNamespace(def, manifest.NamespacePID),
			After:        s.graph.after[name],
			Exec:         execConfigOf(def),
			Image:        s.ctrs[name].imageID,
		})
	}
	// The state goes down before anything is created, so that whatever
	// follows can be found and removed by a down, even if this process
	// dies half-way. The cgroup paths and layer directories never change
	// after this write, so a down always finds them.
	s.state = newStateWriter(s.paths, state, s.warn)
	if err := s.state.flush(); err != nil {
		return err
	}
	if err := makeContainersDir(s.paths); err != nil {
		return err
	}
	dirs := make(map[string]string, len(names))
	for _, name := range names {
		dirs[name] = s.ctrs[name].dir
	}
	agg, err := logs.New(logs.Config{Dirs: dirs, Names: names, Output: s.cfg.Output, Color: s.cfg.Color, Warn: s.warn})
	if err != nil {
		return err
	}
	s.logs = agg
	for _, name := range names {
		if s.ctrs[name].log, err = agg.Container(name); err != nil {
			return err
		}
	}
	// Before any container: a taken port fails the start with nothing
	// started, and every address is known for the name files.
	if s.netPlan != nil {
		if err := s.createNetwork(s.netPlan); err != nil {
			return err
		}
	}
	s.watchCtx, s.unwatch = context.WithCancel(context.WithoutCancel(ctx))
	return nil
}

// abort undoes a start that failed: it stops what runs and removes every
// trace of the stack, and returns cause with what went wrong on the way.
func (s *Supervisor) abort(cause error) error {
	s.Stop()
	err := s.release(true)
	if err != nil {
		return errors.Join(cause, fmt.Errorf("%w: %w", errUncleanAbort, err))
	}
	return cause
}

// errUncleanAbort marks a failed start whose cleanup failed too: something
// is left for down.
var errUncleanAbort = errors.New("clean up after the failed start")

// startFirst starts a container's first run and its run loop.
func (s *Supervisor) startFirst(ctx context.Context, name string) error {
	c := s.ctrs[name]
	if err := s.setUp(c); err != nil {
		return err
	}
	if err := s.awaitConditions(ctx, c); err != nil {
		return err
	}
	r, err := s.startRun(c)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.looping = true
	c.mu.Unlock()
	s.loops.Add(1)
	go s.runLoop(c, r)
	return nil
}

// setUp makes what a container's runs share: its cgroup and the watch of
// its OOM events (its name files come with the network, writeHostsFiles).
// It is done in the container's own start, a few containers at once like
// the starts (StartLimit), rather than for all of them before the first
// start: on two cores the first containers then run while the last ones'
// cgroups are made, where a serial loop kept one core idle for a sixth of
// a 50-container start. A failure fails that start, which aborts the
// stack like any other start error; release skips what was never made.
func (s *Supervisor) setUp(c *container) error {
	name := c.def.Name
	res := cgroup.Resources{Memory: c.def.Memory, CPUs: c.def.CPUs, Pids: c.def.Pids, Devices: runtime.DeviceRules()}
	cg, err := s.cfg.Driver.Create(s.parent.Path()+"/"+name, res)
	if err != nil {
		return fmt.Errorf("container %q: create cgroup: %w", name, err)
	}
	c.mu.Lock()
	c.cg = cg
	c.mu.Unlock()
	return s.watchOOM(s.watchCtx, c)
}

// startRun starts one run of c with its output captured.
func (s *Supervisor) startRun(c *container) (*run, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping {
		return nil, errStopping
	}
	spec, err := s.spec(c)
	if err != nil {
		return nil, err
	}
	if spec.Interface, err = s.attach(c); err != nil {
		return nil, err
	}
	r := &run{}
	if r.oomBefore, err = c.cg.OOMKills(); err != nil {
		return nil, fmt.Errorf("container %q: %w", c.def.Name, err)
	}
	outW, errW, err := r.pipes(c.def.Name)
	if err != nil {
		return nil, err
	}
	spec.Stdout, spec.Stderr = outW, errW
	rc, err := runtime.Start(spec)
	// The container holds its own copies of the write ends now; ours would
	// keep the captures from ever seeing the end of the streams.
	if cerr := errors.Join(outW.Close(), errW.Close()); cerr != nil {
		s.warn(fmt.Errorf("container %q: close output pipes: %w", c.def.Name, cerr))
	}
	if err != nil {
		if spec.Interface != nil {
			err = errors.Join(err, network.Detach(spec.Interface))
		}
		return nil, errors.Join(err, r.closePipes())
	}
	r.rc = rc
	// The event goes first: the program's first lines wait in the pipes
	// until the captures begin.
	c.log.Event("started (pid %d)", rc.Pid())
	c.log.Capture(logs.Stdout, r.stdout)
	c.log.Capture(logs.Stderr, r.stderr)
	c.cur = r
	c.restarter.Started()
	s.startChecks(c, r)
	health := c.progress.health
	proc, perr := processOf(rc.Pid())
	if perr != nil {
		// The program may end before its start time is read; it is then
		// recorded by pid alone and the run loop sees it end.
		proc = Process{Pid: rc.Pid()}
	}
	s.state.update(c.def.Name, func(cs *ContainerState) {
		cs.State = StateRunning
		cs.Health = health
		cs.Process = proc
		cs.ExitCode = nil
		cs.StartedAt = time.Now()
		cs.Restarts = c.restarter.Restarts()
	})
	return r, nil
}

// pipes makes the run's stdout and stderr pipes and returns their write
// ends.
func (r *run) pipes(name string) (outW, errW *os.File, err error) {
	if r.stdout, outW, err = os.Pipe(); err != nil {
		return nil, nil, fmt.Errorf("container %q: stdout pipe: %w", name, err)
	}
	if r.stderr, errW, err = os.Pipe(); err != nil {
		r.stdout.Close()
		outW.Close()
		return nil, nil, fmt.Errorf("container %q: stderr pipe: %w", name, err)
	}
	return outW, errW, nil
}

func (r *run) closePipes() error {
	return errors.Join(r.stdout.Close(), r.stderr.Close())
}
