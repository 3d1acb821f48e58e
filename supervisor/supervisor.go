package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	goruntime "runtime"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/stack-containers/stack/cgroup"
	"github.com/stack-containers/stack/manifest"
	"github.com/stack-containers/stack/runtime"
	"github.com/stack-containers/stack/supervisor/logs"
)

// ErrRunning is returned by Start for a stack whose supervisor is alive.
var ErrRunning = errors.New("already running")

// errStopping refuses to start a run of a container that is being stopped.
var errStopping = errors.New("container is being stopped")

// Config is what a supervisor needs besides the stack.
type Config struct {
	// StateDir is STACK_STATE_DIR: the stack's state lives in a directory
	// of its name below it.
	StateDir string
	// CgroupParent is STACK_CGROUP_PARENT: the stack's cgroups are made
	// at <CgroupParent>/<stack>/<container>.
	CgroupParent string
	Driver       cgroup.Driver
	// Output receives the aggregated `NAME | LINE` stream; nil for none.
	Output io.Writer
	// Color colors the names in Output.
	Color bool
	// Errors receives what goes wrong while the stack runs and cannot be
	// returned to anyone (a state file that cannot be written); nil means
	// os.Stderr.
	Errors io.Writer
	// Clock times restarts and grace periods; nil means the wall clock.
	Clock Clock
	// StartLimit caps how many containers start at once; 0 means
	// DefaultStartLimit.
	StartLimit int
}

// DefaultStartLimit is how many containers start at once unless
// Config.StartLimit says otherwise: starting is mostly the kernel's work
// on namespaces and mounts, so a few per CPU keep every CPU busy.
func DefaultStartLimit() int { return 2 * goruntime.NumCPU() }

// Supervisor runs one stack: it starts its containers, restarts them by
// their policies, captures their output and keeps the state file, until the
// stack ends by itself or is stopped.
type Supervisor struct {
	stack  *manifest.Stack
	cfg    Config
	paths  Paths
	graph  *graph
	lock   *stackLock
	logs   *logs.Aggregator
	parent cgroup.Cgroup
	ctrs   map[string]*container

	// loops counts the containers' run loops.
	loops sync.WaitGroup
	// watchers are the OOM event readers, ended by unwatch.
	watchers sync.WaitGroup
	unwatch  context.CancelFunc

	stopOnce sync.Once
	killOnce sync.Once
	// kill is closed when the grace periods are to end at once.
	kill chan struct{}
	// done is closed once the stack has ended and its resources are gone.
	done chan struct{}
	// result is what Wait returns; set before done is closed.
	result error

	// mu guards state and version.
	mu    sync.Mutex
	state State
	// version counts the changes to state.
	version uint64

	// writeMu is held from taking a snapshot of the state to renaming it
	// into place, so that writes land in the order of their snapshots and
	// the file never goes back to an older state. It guards written and
	// writes.
	writeMu sync.Mutex
	// written is the version of the state that the file holds.
	written uint64
	// writes counts the state file's writes.
	writes int
	// dirty wakes the writer (see writeLoop) after a change.
	dirty chan struct{}
	// endWriter ends the writer, which closes writerDone as it returns.
	endWriter  chan struct{}
	writerDone chan struct{}
}

// container is the supervisor's view of one container.
type container struct {
	def       *manifest.Container
	cg        cgroup.Cgroup
	log       *logs.Log
	restarter *Restarter
	layer     string
	// done is closed when the run loop has returned.
	done chan struct{}

	// mu guards the fields below, and is held across a run's start so
	// that a stop either comes before it (and prevents it) or after it
	// (and sees the run).
	mu       sync.Mutex
	stopping bool
	stop     chan struct{} // closed when stopping is set
	looping  bool          // the run loop was started
	cur      *run          // the current run; nil between runs
	oomSeen  uint64        // OOM kills already reported
	failure  error         // why the container's final end counts as a failure
}

// run is one start of a container, until its PID 1 ends.
type run struct {
	rc             *runtime.Container
	stdout, stderr *os.File
	oomBefore      uint64
}

// Start checks, locks and starts a stack, and returns once every container
// runs (phases 1 to 4 of doc.go). If a container fails to start, the ones
// started are stopped, everything is removed again, and the error names the
// container and the cause.
func Start(ctx context.Context, st *manifest.Stack, cfg Config) (*Supervisor, error) {
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
	lock, err := tryLock(paths.Dir)
	if errors.Is(err, errLocked) {
		return nil, fmt.Errorf("stack %q is %w", st.Name, ErrRunning)
	}
	if err != nil {
		return nil, fmt.Errorf("stack %q: %w", st.Name, err)
	}
	// What an earlier run left is cleared before anything else: should
	// that fail, its state stays for a later down to finish the job.
	if err := clearStack(ctx, paths, cfg.Driver, cfg.Clock); err != nil {
		err = fmt.Errorf("stack %q: clean up the previous run: %w", st.Name, err)
		return nil, errors.Join(err, lock.release())
	}
	s := &Supervisor{
		stack: st, cfg: cfg, paths: paths, graph: g, lock: lock,
		ctrs: map[string]*container{},
		kill: make(chan struct{}),
		done: make(chan struct{}),
	}
	s.startWriter()
	if err := s.prepare(ctx); err != nil {
		return nil, s.abort(fmt.Errorf("stack %q: %w", st.Name, err))
	}
	if err := g.walk(ctx, cfg.StartLimit, s.startFirst); err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("stack %q: start interrupted: %w", st.Name, err)
		}
		return nil, s.abort(err)
	}
	// Up -d reports the stack up as soon as Start returns, and ps right
	// after must show every container running: the writer may not have
	// caught up yet.
	if err := s.flush(); err != nil {
		return nil, s.abort(fmt.Errorf("stack %q: %w", st.Name, err))
	}
	go s.finishWhenEnded()
	return s, nil
}

// prepare writes the initial state, opens the logs and creates the
// cgroups.
func (s *Supervisor) prepare(ctx context.Context) error {
	self, err := processOf(os.Getpid())
	if err != nil {
		return err
	}
	names := s.graph.names()
	s.state = State{
		Stack:      s.stack.Name,
		File:       s.stack.File,
		Supervisor: self,
		Cgroup:     s.cfg.CgroupParent + "/" + s.stack.Name,
	}
	s.parent = s.cfg.Driver.Load(s.state.Cgroup)
	for _, name := range names {
		def := s.stack.Containers[name]
		s.ctrs[name] = &container{
			def:       def,
			restarter: NewRestarter(def.Restart, s.cfg.Clock),
			layer:     s.paths.Layer(name),
			done:      make(chan struct{}),
			stop:      make(chan struct{}),
		}
		s.state.Containers = append(s.state.Containers, ContainerState{
			Name:         name,
			State:        StateCreated,
			Cgroup:       s.state.Cgroup + "/" + name,
			LayerDir:     s.paths.Layer(name),
			MemoryLimit:  def.Memory,
			StopSignal:   def.StopSignal,
			StopTimeout:  def.StopTimeout,
			PIDNamespace: hasNamespace(def, manifest.NamespacePID),
			After:        s.graph.after[name],
		})
	}
	// The state goes down before anything is created, so that whatever
	// follows can be found and removed by a down, even if this process
	// dies half-way. The cgroup paths and layer directories never change
	// after this write, so a down always finds them.
	s.version++
	if err := s.flush(); err != nil {
		return err
	}
	agg, err := logs.New(logs.Config{Dir: s.paths.Logs(), Names: names, Output: s.cfg.Output, Color: s.cfg.Color})
	if err != nil {
		return err
	}
	s.logs = agg
	for _, name := range names {
		c := s.ctrs[name]
		if c.log, err = agg.Container(name); err != nil {
			return err
		}
		res := cgroup.Resources{Memory: c.def.Memory, CPUs: c.def.CPUs, Pids: c.def.Pids}
		if c.cg, err = s.cfg.Driver.Create(s.state.Cgroup+"/"+name, res); err != nil {
			return fmt.Errorf("container %q: create cgroup: %w", name, err)
		}
	}
	var watchCtx context.Context
	watchCtx, s.unwatch = context.WithCancel(context.WithoutCancel(ctx))
	for _, name := range names {
		if err := s.watchOOM(watchCtx, s.ctrs[name]); err != nil {
			return err
		}
	}
	return nil
}

func hasNamespace(c *manifest.Container, ns manifest.Namespace) bool {
	return slices.Contains(c.Namespaces, ns)
}

// abort undoes a start that failed: it stops what runs and removes every
// trace of the stack, and returns cause with what went wrong on the way.
func (s *Supervisor) abort(cause error) error {
	s.Stop()
	err := s.release(true)
	if err != nil {
		return errors.Join(cause, fmt.Errorf("clean up after the failed start: %w", err))
	}
	return cause
}

// startFirst starts a container's first run and its run loop.
func (s *Supervisor) startFirst(ctx context.Context, name string) error {
	c := s.ctrs[name]
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
	proc, perr := processOf(rc.Pid())
	if perr != nil {
		// The program may end before its start time is read; it is then
		// recorded by pid alone and the run loop sees it end.
		proc = Process{Pid: rc.Pid()}
	}
	s.update(c.def.Name, func(cs *ContainerState) {
		cs.State = StateRunning
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

// spec builds the runtime's description of c; c.mu is held.
func (s *Supervisor) spec(c *container) (*runtime.Spec, error) {
	d := c.def
	env := make([]string, 0, len(d.Env))
	for k, v := range d.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	namespaces := make([]string, len(d.Namespaces))
	for i, ns := range d.Namespaces {
		namespaces[i] = string(ns)
	}
	var join map[string]int
	for ns, other := range d.Join {
		pid := s.ctrs[other].pid()
		if pid == 0 {
			return nil, fmt.Errorf("container %q: join the %s namespace of %q: it is not running", d.Name, ns, other)
		}
		if join == nil {
			join = map[string]int{}
		}
		join[string(ns)] = pid
	}
	mounts := make([]runtime.Mount, len(d.Mounts))
	for i, m := range d.Mounts {
		mounts[i] = runtime.Mount{Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly}
	}
	return &runtime.Spec{
		Name:       d.Name,
		Rootfs:     d.Rootfs,
		Args:       d.Command,
		Env:        env,
		Workdir:    d.Workdir,
		Hostname:   d.Hostname,
		UID:        d.UID,
		GID:        d.GID,
		Namespaces: namespaces,
		Join:       join,
		ReadOnly:   d.ReadOnly,
		Mounts:     mounts,
		LayerDir:   c.layer,
		CacheDir:   cacheDir(s.cfg.StateDir),
		Cgroup:     c.cg,
		// See doc.go, "When the supervisor dies".
		ParentDeathSignal: syscall.SIGKILL,
	}, nil
}

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
			s.update(name, func(cs *ContainerState) { cs.State = StateExited; cs.Process = Process{} })
			c.log.Event("%v", err)
			return
		}
		why := describeEnding(ending)
		c.log.Event("%s", why)
		d := c.restarter.Ended(ending)
		s.update(name, func(cs *ContainerState) {
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
			s.update(name, func(cs *ContainerState) { cs.State = StateStopped })
			return
		}
		r, err = s.startRun(c)
		if errors.Is(err, errStopping) {
			s.update(name, func(cs *ContainerState) { cs.State = StateStopped })
			return
		}
		if err != nil {
			c.log.Event("restart failed: %v", err)
			s.fail(c, err)
			s.update(name, func(cs *ContainerState) { cs.State = StateExited })
			return
		}
	}
}

// waitRun waits for run r of c to end, collects its last output and tells
// how it ended.
func (s *Supervisor) waitRun(c *container, r *run) (Ending, error) {
	name := c.def.Name
	status, werr := r.rc.Wait()
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
		s.reportOOM(c, oomAfter)
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
				n, err := c.cg.OOMKills()
				if err != nil || s.reportOOM(c, n) {
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

// reportOOM writes an event for OOM kills counted up to n not yet reported,
// and reports whether there were any.
func (s *Supervisor) reportOOM(c *container, n uint64) bool {
	c.mu.Lock()
	fresh := n > c.oomSeen
	if fresh {
		c.oomSeen = n
	}
	c.mu.Unlock()
	if !fresh {
		return false
	}
	s.update(c.def.Name, func(cs *ContainerState) { cs.OOMKills = n })
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
	}
	looping, r := c.looping, c.cur
	c.mu.Unlock()
	if !looping {
		return
	}
	if r != nil {
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
		case <-s.cfg.Clock.After(grace):
			c.log.Event("still running after %v, killing it", grace)
		}
	}
	if err := c.cg.Kill(); err != nil {
		s.warn(fmt.Errorf("container %q: %w", c.def.Name, err))
	}
}

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
	s.endWriterAndWait()
	var errs []error
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
	s.mu.Lock()
	s.state.Ended = true
	s.version++
	s.mu.Unlock()
	errs = append(errs, s.flush(), s.lock.release())
	return errors.Join(errs...)
}

func wrapName(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("container %q: %w", name, err)
}

// Wait waits until the stack has ended (by itself or by Stop) and its
// resources are released. It returns nil when every container's last run
// exited 0 or was stopped by stack, and otherwise why not.
func (s *Supervisor) Wait() error {
	<-s.done
	return s.result
}

// Done is closed once the stack has ended and its resources are released.
func (s *Supervisor) Done() <-chan struct{} { return s.done }

// update changes a container's entry of the state and has the writer
// write it soon: a burst of changes, such as a whole stack starting, costs
// a write or two rather than one each, and no change waits for the disk.
func (s *Supervisor) update(name string, fn func(*ContainerState)) {
	s.mu.Lock()
	fn(s.state.Container(name))
	s.version++
	s.mu.Unlock()
	select {
	case s.dirty <- struct{}{}:
	default:
		// The writer is already due to write, and will take this change
		// with the others.
	}
}

// startWriter starts the goroutine that writes the state file after
// changes (writeLoop); endWriterAndWait ends it.
func (s *Supervisor) startWriter() {
	s.dirty = make(chan struct{}, 1)
	s.endWriter = make(chan struct{})
	s.writerDone = make(chan struct{})
	go s.writeLoop()
}

// stateWriteDelay is how long the writer lets changes gather before it
// writes them. Containers start a few milliseconds apart, each start a
// change: without the delay the writer keeps up with them and writes
// nearly once per container. It bounds how late ps may show a change
// (restarts, exits); a start is flushed before it is reported.
const stateWriteDelay = 50 * time.Millisecond

// writeLoop writes the latest state stateWriteDelay after it is woken by a
// change, until it is ended. Changes made while it waits or writes are
// taken together by one write.
func (s *Supervisor) writeLoop() {
	defer close(s.writerDone)
	delay := time.NewTimer(stateWriteDelay)
	delay.Stop()
	for {
		select {
		case <-s.endWriter:
			return
		case <-s.dirty:
		}
		delay.Reset(stateWriteDelay)
		select {
		case <-s.endWriter:
			// The last write, by whoever ended the writer, takes the
			// changes.
			return
		case <-delay.C:
		}
		if err := s.flush(); err != nil {
			s.warn(err)
		}
	}
}

func (s *Supervisor) endWriterAndWait() {
	close(s.endWriter)
	<-s.writerDone
}

// flush writes the state as it is now, unless the file holds it already,
// and returns once it is in place. The snapshot is taken under mu, and
// written outside it, so that no update waits for the disk.
func (s *Supervisor) flush() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	version := s.version
	if version == s.written {
		s.mu.Unlock()
		return nil
	}
	b, err := encodeState(&s.state)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := writeStateFile(s.paths, b); err != nil {
		return err
	}
	s.written = version
	s.writes++
	return nil
}

// warn reports a problem that nobody can be returned it.
func (s *Supervisor) warn(err error) {
	fmt.Fprintf(s.cfg.Errors, "stack: warning: %v\n", err)
}
