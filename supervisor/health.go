package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"

	"github.com/stack-containers/stack/manifest"
	"github.com/stack-containers/stack/runtime"
)

// Health checks (SPEC.md, "Health checks") and the depends_on conditions
// that wait for them: each run of a container with a check has a checker
// goroutine, owned by the run and ended with it, that execs the check into
// the container as `stack exec` does (runtime.Exec: the same namespaces,
// cgroup and confinement).

// The health of a container, as ps shows it.
const (
	HealthNone      = ""
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// maxCheckOutput bounds what is kept of a check's output: the end of it,
// for the event of an unhealthy container.
const maxCheckOutput = 4096

// progress is what depends_on conditions watch of a container; c.mu guards
// it, and c.changed is closed and replaced at each change.
type progress struct {
	health string
	// lastOutput is the last failed check's output.
	lastOutput string
	// completed is set once a run exited 0.
	completed bool
	// ended is set once the container ends for good; exit says how.
	ended bool
	exit  string
}

// changeProgress changes c's progress and wakes its waiters.
func (c *container) changeProgress(f func(p *progress)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.progress)
	close(c.changed)
	c.changed = make(chan struct{})
}

// checker runs a run's health checks until stop is called.
type checker struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// stop ends the checks and waits until the checker has returned; a check
// under way is killed.
func (k *checker) stop() {
	if k == nil {
		return
	}
	k.cancel()
	<-k.done
}

// startChecks starts the health checks of run r of c, if c has a check;
// c.mu is held. The caller records the health it sets in the state, with
// the run's start.
func (s *Supervisor) startChecks(c *container, r *run) {
	hc := c.def.Healthcheck
	if hc == nil || hc.Disabled {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.checks = &checker{cancel: cancel, done: make(chan struct{})}
	// A new run starts unchecked: what the previous one was says nothing
	// of this one (Docker resets health on restart too).
	c.progress.health = HealthStarting
	go func() {
		defer close(r.checks.done)
		s.checkLoop(ctx, c, r, hc)
	}()
}

// checkLoop runs the checks of one run: the first after start_interval
// (during start_period) or interval, each killed at its timeout.
func (s *Supervisor) checkLoop(ctx context.Context, c *container, r *run, hc *manifest.Healthcheck) {
	clock := s.cfg.Clock
	started := clock.Now()
	failures := 0
	health := HealthStarting
	for {
		inStartPeriod := clock.Now().Sub(started) < hc.StartPeriod
		wait := hc.Interval
		if inStartPeriod && health == HealthStarting {
			wait = hc.StartInterval
		}
		select {
		case <-ctx.Done():
			return
		case <-clock.After(wait):
		}
		ok, output := s.probe(ctx, c, r, hc)
		if ctx.Err() != nil {
			return // stopped during the check: its result means nothing
		}
		next := health
		switch {
		case ok:
			failures = 0
			next = HealthHealthy
		case clock.Now().Sub(started) < hc.StartPeriod && health == HealthStarting:
			// Failures during the start period do not count.
		default:
			failures++
			if failures >= hc.Retries {
				next = HealthUnhealthy
			}
		}
		if !ok {
			c.changeProgress(func(p *progress) { p.lastOutput = output })
		}
		if next == health {
			continue
		}
		health = next
		c.changeProgress(func(p *progress) { p.health = next })
		s.state.update(c.def.Name, func(cs *ContainerState) { cs.Health, cs.HealthOutput = next, output })
		if next == HealthUnhealthy {
			c.log.Event("unhealthy: %s", output)
		} else {
			c.log.Event("%s", next)
		}
	}
}

// probe runs one check in run r of c and reports whether it passed, with
// its output (or why it could not run) on one line.
func (s *Supervisor) probe(ctx context.Context, c *container, r *run, hc *manifest.Healthcheck) (bool, string) {
	out := &tailBuffer{max: maxCheckOutput}
	pid := r.rc.Pid()
	req := ExecRequest{Container: c.def.Name, Args: hc.Test, Stdout: out, Stderr: out}
	spec := execSpec(c.def.Name, Process{Pid: pid}, execConfigOf(c.def), req)
	// Until the run's PID 1 is waited for, its pid cannot name another
	// process.
	spec.Same = func() bool {
		select {
		case <-r.rc.Done():
			return false
		default:
			return true
		}
	}
	spec.Cgroup = c.cg
	spec.Init = s.cfg.Init
	// A check must not outlive the supervisor.
	spec.ParentDeathSignal = syscall.SIGKILL
	p, err := runtime.Exec(spec)
	if err != nil {
		// What the entering process wrote may say more (a crash).
		return false, oneLine(err.Error() + "\n" + out.String())
	}
	select {
	case <-p.Done():
	case <-ctx.Done():
		p.Kill()
		p.Wait()
		return false, "stopped"
	case <-s.cfg.Clock.After(hc.Timeout):
		if err := p.Kill(); err != nil {
			s.warn(err)
		}
		p.Wait()
		return false, fmt.Sprintf("check timed out after %v", hc.Timeout)
	}
	st, err := p.Wait()
	if err != nil {
		return false, oneLine(err.Error())
	}
	text := oneLine(out.String())
	if st.Code != 0 {
		if text == "" {
			text = fmt.Sprintf("exit status %d", st.Code)
		}
		return false, text
	}
	return true, text
}

// oneLine is s on one line, its lines joined by "; ".
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}

// tailBuffer keeps the last max bytes written to it; the check's stdout and
// stderr write it from two goroutines.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}

// errConditionFailed is wrapped by the error of a container whose
// depends_on condition can no longer be met.
var errConditionFailed = errors.New("condition can no longer be met")

// awaitConditions waits until every depends_on condition of c other than
// service_started holds, and fails, naming both containers, once one can
// no longer be met.
func (s *Supervisor) awaitConditions(ctx context.Context, c *container) error {
	for _, dep := range c.def.DependsOn {
		cond := c.def.Conditions[dep]
		if cond == "" || cond == manifest.ConditionStarted {
			continue
		}
		if err := s.awaitCondition(ctx, s.ctrs[dep], cond); err != nil {
			return fmt.Errorf("container %q: depends on %q (%s): %w", c.def.Name, dep, cond, err)
		}
	}
	return nil
}

func (s *Supervisor) awaitCondition(ctx context.Context, dep *container, cond manifest.Condition) error {
	// The manifest refuses this for a rootfs; an image's check is known
	// only once the image is.
	if hc := dep.def.Healthcheck; cond == manifest.ConditionHealthy && (hc == nil || hc.Disabled) {
		return fmt.Errorf("%w: it has no healthcheck, so it can never be healthy", errConditionFailed)
	}
	for {
		dep.mu.Lock()
		p, changed, stopping := dep.progress, dep.changed, dep.stopping
		dep.mu.Unlock()
		switch {
		case cond == manifest.ConditionHealthy && p.health == HealthHealthy:
			return nil
		case cond == manifest.ConditionCompleted && p.completed:
			return nil
		case cond == manifest.ConditionHealthy && p.health == HealthUnhealthy:
			return fmt.Errorf("%w: it is unhealthy: %s", errConditionFailed, p.lastOutput)
		case p.ended:
			return fmt.Errorf("%w: it %s", errConditionFailed, p.exit)
		case stopping:
			return errStopping
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
