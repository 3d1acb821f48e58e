package supervisor

import (
	"context"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestEndedWatchesAProcessThatIsNotAChild: ended closes its channel when
// the process exits, however it ends and whoever reaps it, and at once for
// a process that is not the recorded one.
func TestEndedWatchesAProcessThatIsNotAChild(t *testing.T) {
	cmd := startShell(t, "echo ready; exec sleep 100")
	p, err := processOf(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := ended(ctx, p)
	select {
	case <-ch:
		t.Fatal("ended closed for a process that runs")
	default:
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("ended still open 10s after the process was killed")
	}

	for _, gone := range []Process{{}, {Pid: cmd.Process.Pid, Start: p.Start + 1}} {
		select {
		case <-ended(ctx, gone):
		default:
			t.Errorf("ended(%+v) is open, want closed at once", gone)
		}
	}
}

// TestEndedEndsWithItsContext: a watch whose context ends stops watching,
// and leaves its channel open and the process alone.
func TestEndedEndsWithItsContext(t *testing.T) {
	cmd := startShell(t, "echo ready; exec sleep 100")
	p, err := processOf(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := ended(ctx, p)
	// Cancelled once the watch waits on the pidfd, not before it has begun.
	waitWatches(t, func(w []string) bool { return len(w) == 1 && strings.Contains(w[0], "[IO wait") })
	cancel()
	waitWatches(t, func(w []string) bool { return len(w) == 0 })
	select {
	case <-ch:
		t.Error("ended closed when its context ended")
	default:
	}
	if !p.Alive() {
		t.Error("the process ended with the watch")
	}
}

// waitWatches waits until the goroutines that ended started for the
// calling goroutine, each given by its stack, are as done says.
func waitWatches(t *testing.T, done func(watches []string) bool) {
	t.Helper()
	self := goroutineID(stacks(false))
	created := "created by github.com/stack-containers/stack/supervisor.ended in goroutine " + self + "\n"
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		var watches []string
		for _, g := range strings.Split(stacks(true), "\n\n") {
			if strings.Contains(g, created) {
				watches = append(watches, g)
			}
		}
		if done(watches) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s, %d watches:\n%s", len(watches), strings.Join(watches, "\n\n"))
		}
	}
}

// stacks is runtime.Stack's text, whole.
func stacks(all bool) string {
	for n := 1 << 16; ; n *= 2 {
		buf := make([]byte, n)
		if m := runtime.Stack(buf, all); m < n {
			return string(buf[:m])
		}
	}
}

// goroutineID is the number of the first goroutine in a stack text.
func goroutineID(stack string) string {
	id, _, _ := strings.Cut(strings.TrimPrefix(stack, "goroutine "), " ")
	return id
}
