package supervisor

import (
	"fmt"
	"time"

	"github.com/stack-containers/stack/manifest"
)

// Clock is the time source of the restart policy, so that its tests can
// advance time instead of sleeping.
type Clock interface {
	Now() time.Time
	// After sends the time once d has passed, like time.After.
	After(d time.Duration) <-chan time.Time
}

// realClock is the wall clock.
type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// backoffReset is how long a container must run without ending for its next
// restart to wait the first delay again (SPEC: "resets after 10 s").
const backoffReset = 10 * time.Second

// Ending is how one run of a container ended, as the policy needs to know it.
type Ending struct {
	// Code is the exit code, or 128+signal.
	Code int
	// Signaled is true when a signal ended the run.
	Signaled bool
	// OOM is true when the cgroup's OOM-kill count rose during the run.
	OOM bool
	// Stopped is true when stack itself stopped the container (down,
	// Ctrl-C); such a container is never restarted.
	Stopped bool
}

// failed reports whether the run counts as a failure for on-failure.
func (e Ending) failed() bool { return e.Code != 0 || e.Signaled || e.OOM }

// Decision is what the policy says to do after a run ended.
type Decision struct {
	Restart bool
	// Delay is how long to wait before the restart.
	Delay time.Duration
	// Attempt is the 1-based number of this restart.
	Attempt int
	// GaveUp is true when the policy would have restarted the container
	// but its max_retries are used up.
	GaveUp bool
}

// Restarter applies one container's restart policy across its runs. It is
// not safe for concurrent use: one container's run loop owns it.
type Restarter struct {
	policy manifest.RestartPolicy
	clock  Clock
	// restarts counts every restart so far, the figure max_retries caps.
	restarts int
	// streak counts the consecutive restarts since the delay was last
	// reset; the next delay is backoff * 2^streak.
	streak  int
	started time.Time
}

// NewRestarter returns the policy state of a container that has not run yet.
func NewRestarter(p manifest.RestartPolicy, c Clock) *Restarter {
	return &Restarter{policy: p, clock: c}
}

// Started records that a run began now.
func (r *Restarter) Started() { r.started = r.clock.Now() }

// Restarts is the number of restarts decided so far.
func (r *Restarter) Restarts() int { return r.restarts }

// Ended decides what follows the run that just ended.
func (r *Restarter) Ended(e Ending) Decision {
	if e.Stopped || !r.wants(e) {
		return Decision{}
	}
	if r.policy.MaxRetries > 0 && r.restarts >= r.policy.MaxRetries {
		return Decision{GaveUp: true}
	}
	if r.clock.Now().Sub(r.started) >= backoffReset {
		r.streak = 0
	}
	d := r.delay()
	r.streak++
	r.restarts++
	return Decision{Restart: true, Delay: d, Attempt: r.restarts}
}

// wants reports whether the policy restarts after this kind of ending.
func (r *Restarter) wants(e Ending) bool {
	switch r.policy.Policy {
	case manifest.RestartAlways:
		return true
	case manifest.RestartOnFailure:
		return e.failed()
	case manifest.RestartOnOOM:
		return e.OOM
	default:
		return false
	}
}

// delay is backoff doubled streak times, capped at max_backoff; the loop
// rather than a shift keeps a long streak from overflowing.
func (r *Restarter) delay() time.Duration {
	d := r.policy.Backoff
	for i := 0; i < r.streak && d < r.policy.MaxBackoff; i++ {
		d *= 2
	}
	if r.policy.MaxBackoff > 0 && d > r.policy.MaxBackoff {
		d = r.policy.MaxBackoff
	}
	return d
}

// describe renders the restart's "attempt k of n" for the event line.
func (d Decision) describe(max int) string {
	if max == 0 {
		return fmt.Sprintf("attempt %d", d.Attempt)
	}
	return fmt.Sprintf("attempt %d of %d", d.Attempt, max)
}
