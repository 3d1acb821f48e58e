package supervisor

import (
	"context"
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

// TestEndedEndsWithItsContext: a watch whose context ends leaves its
// channel open, and the process alone.
func TestEndedEndsWithItsContext(t *testing.T) {
	cmd := startShell(t, "echo ready; exec sleep 100")
	p, err := processOf(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := ended(ctx, p)
	cancel()
	waitGone(ctx, p, nil)
	select {
	case <-ch:
		t.Error("ended closed when its context ended")
	default:
	}
	if !p.Alive() {
		t.Error("the process ended with the watch")
	}
}
