package e2e

// Reliability: what hostile use found (races between commands, a full
// disk, closed outputs, limits the kernel cannot honour), each checked as
// a user meets it.

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2EDownRacesUpClearing runs down while an up -d takes over the
// stack: from scratch (the lock taken, no state written yet), and over a
// run whose supervisor was killed (the state still names that dead
// supervisor while the new one clears it). Down used to wait for the lock
// without end there. The race is run many times, with down landing
// a little later each time, so that it falls in every phase of the up.
// Whatever the order, both commands end, neither says the stack is
// already running or that a context was canceled, and a last down leaves
// nothing.
func TestE2EDownRacesUpClearing(t *testing.T) {
	e := newEnv(t)
	e.manifest(`
name: race
containers:
  web:
    rootfs: {{rootfs}}
    command: sleep 1000
    stop_timeout: 2s
  db:
    rootfs: {{rootfs}}
    command: sleep 1000
    stop_timeout: 2s
`)
	const rounds = 12
	for i := range rounds {
		overKilled := i%2 == 1
		if overKilled {
			e.MustRun("up", "-d")
			sup := e.supervisorPid("race")
			if err := syscall.Kill(sup, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			// Until it has died, it is a running stack's supervisor.
			e.WaitFor("the killed supervisor to end", func() bool { return !alive(sup) })
		}
		up := e.Start("up", "-d")
		time.Sleep(time.Duration(i) * 5 * time.Millisecond)
		down := e.Run("down")
		upEnd := up.Wait()
		if down.Code != 0 {
			t.Errorf("round %d: down: exit %d: %s", i, down.Code, down.Stderr)
		}
		for _, wrong := range []string{"already running", "context canceled", "\nEOF"} {
			if strings.Contains(upEnd.Stderr, wrong) {
				t.Errorf("round %d: up -d racing down says %q: exit %d:\n%s", i, wrong, upEnd.Code, upEnd.Stderr)
			}
		}
		t.Logf("round %d (over a killed supervisor: %v): up -d exit %d, down %v; up -d said: %s", i, overKilled, upEnd.Code, down.Took, upEnd.Stderr)
		e.MustRun("down")
		e.AssertNothingLeft()
	}
}
