package e2e

// Reliability: what hostile use found (races between commands, a full
// disk, closed outputs, limits the kernel cannot honour), each checked as
// a user meets it.

import (
	"fmt"
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

// TestE2EPsWhileDown runs ps over and over while down stops the stack:
// containers end and their cgroups go while ps reads them, which must never
// make ps fail (it used to, with ENODEV, in a few percent of calls).
func TestE2EPsWhileDown(t *testing.T) {
	e := newEnv(t)
	var m strings.Builder
	m.WriteString("name: ending\ncontainers:\n")
	for i := range 8 {
		fmt.Fprintf(&m, "  c%d:\n    rootfs: {{rootfs}}\n    command: sleep 1000\n", i)
	}
	e.manifest(m.String())
	calls := 0
	for round := range 6 {
		e.MustRun("up", "-d")
		down := e.Start("down")
		for {
			select {
			case <-down.Done():
			default:
				r := e.Run("-p", "ending", "ps", "--format", "json")
				calls++
				if r.Code != 0 {
					t.Errorf("round %d: ps during down: exit %d: %s", round, r.Code, r.Stderr)
				}
				continue
			}
			break
		}
		if r := down.Wait(); r.Code != 0 {
			t.Fatalf("down: exit %d: %s", r.Code, r.Stderr)
		}
	}
	t.Logf("%d ps calls during 6 downs", calls)
	e.AssertNothingLeft()
}
