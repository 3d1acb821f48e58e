package supervisor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stack-containers/stack/manifest"
)

// waitPoll is how often WaitReady reads the state file.
const waitPoll = 100 * time.Millisecond

// ErrWaitTimeout is wrapped by WaitReady's error when ctx's deadline passed.
var ErrWaitTimeout = errors.New("timed out")

// WaitReady returns once every container of st runs and every one with a
// health check is healthy (up --wait). It fails, naming the container,
// once one has exited (but for the ones a service_completed_successfully
// condition waits for, which may exit 0) or is unhealthy, or, wrapping
// ErrWaitTimeout, when ctx's deadline passes. It only reads the state:
// the stack is left as it is.
func WaitReady(ctx context.Context, cfg Config, st *manifest.Stack) error {
	jobs := map[string]bool{}
	for _, c := range st.Containers {
		for dep, cond := range c.Conditions {
			if cond == manifest.ConditionCompleted {
				jobs[dep] = true
			}
		}
	}
	for {
		status, err := ReadStatus(cfg, st.Name, time.Now())
		if err != nil {
			return err
		}
		var pending []string
		for _, c := range status.Containers {
			// The state says which have a check: an image's is known
			// only to the supervisor.
			checked := c.Health != HealthNone
			ended := c.State == StateExited || c.State == StateStopped
			switch {
			case ended && c.ExitCode == nil && status.Running:
				// Its PID 1 has ended, and the supervisor is about to
				// record how: asked again in a moment.
				pending = append(pending, c.Name)
			case ended && jobs[c.Name] && c.ExitCode != nil && *c.ExitCode == 0:
			case ended:
				code := "no status"
				if c.ExitCode != nil {
					code = fmt.Sprintf("status %d", *c.ExitCode)
				}
				return fmt.Errorf("container %q exited with %s", c.Name, code)
			case c.Health == HealthUnhealthy:
				msg := fmt.Sprintf("container %q is unhealthy", c.Name)
				if c.HealthOutput != "" {
					msg += ": " + c.HealthOutput
				}
				return errors.New(msg)
			case c.State != StateRunning, checked && c.Health != HealthHealthy:
				pending = append(pending, c.Name)
			}
		}
		if len(pending) == 0 && len(status.Containers) > 0 {
			return nil
		}
		if !status.Running {
			return fmt.Errorf("stack %q is not running", st.Name)
		}
		select {
		case <-ctx.Done():
			slices.Sort(pending)
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%w waiting for %s to be running and healthy", ErrWaitTimeout, strings.Join(quoteAll(pending), ", "))
			}
			return ctx.Err()
		case <-time.After(waitPoll):
		}
	}
}

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = fmt.Sprintf("%q", n)
	}
	return out
}
