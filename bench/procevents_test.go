package main

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A wait in progress ends as soon as events are lost, with an error that
// names what it waited for, not at its deadline an hour later: the events
// it waits for may be among the lost ones.
func TestUntilEndsWhenEventsAreLost(t *testing.T) {
	tests := []struct {
		name string
		// lose makes the watcher lose events, as its reader does.
		lose func(w *procWatcher)
		want string
	}{
		{"socket overflowed", func(w *procWatcher) { w.loseAll(errSocketOverflow) }, "socket's buffer"},
		// The reader of a socket that is not one ends at its first read.
		{"reader ended", func(w *procWatcher) { go w.read() }, "read process events"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Should the wait not end, the test fails here instead of
			// hanging until go test's own timeout.
			bound, cancelBound := context.WithTimeout(t.Context(), time.Minute)
			defer cancelBound()
			w := newWatcherOn(-1)
			tr := newTracker(w, sleepArgv())
			defer tr.stop()
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			waiting := make(chan struct{})
			var once sync.Once
			ended := make(chan error, 1)
			go func() {
				ended <- tr.until(ctx, "the test's programs", func() bool {
					once.Do(func() { close(waiting) })
					return false
				})
			}()
			select {
			case <-waiting:
			case <-bound.Done():
				t.Fatal("the wait did not begin")
			}
			tt.lose(w)
			select {
			case err := <-ended:
				if !errors.Is(err, errEventsLost) || !strings.Contains(err.Error(), "wait for the test's programs") || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("until: %v, want the lost events (%s) named with what it waited for", err, tt.want)
				}
			case <-bound.Done():
				t.Fatal("the wait did not end when events were lost")
			}
		})
	}
}

// Once the reader has ended, a watch begun later has lost its events from
// the start, and a wait on it ends at once.
func TestWatchAfterReaderEnded(t *testing.T) {
	w := newWatcherOn(-1)
	w.read() // ends at its first read: -1 is no socket
	tr := newTracker(w, sleepArgv())
	defer tr.stop()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := tr.untilExecs(ctx, 1); !errors.Is(err, errEventsLost) {
		t.Fatalf("untilExecs: %v, want the lost events", err)
	}
}

// An event that does not fit in its watch's channel marks that watch lossy
// and no other, and never blocks the reader.
func TestFullWatchIsLossy(t *testing.T) {
	w := newWatcherOn(-1)
	full, stopFull := w.watch(sleepArgv())
	defer stopFull()
	other, stopOther := w.watch(sleepArgv())
	defer stopOther()
	w.mu.Lock()
	for pid := range cap(full.events) + 1 {
		send(full, procEvent{exec: true, pid: pid})
	}
	w.mu.Unlock()
	if err := full.lostErr(); !errors.Is(err, errEventsLost) {
		t.Fatalf("full watch: %v, want the lost events", err)
	}
	if err := other.lostErr(); err != nil {
		t.Fatalf("other watch: %v, want none lost", err)
	}
}

// A command that ends of itself is waited for; one that does not is
// killed when the grace is over, and the wait says so.
func TestWaitOrKill(t *testing.T) {
	ends := exec.Command("/bin/true")
	if err := ends.Start(); err != nil {
		t.Fatal(err)
	}
	if err := waitOrKill(t.Context(), ends, time.Hour); err != nil {
		t.Fatalf("/bin/true: %v", err)
	}
	hangs := exec.Command("/bin/sleep", "3600")
	if err := hangs.Start(); err != nil {
		t.Fatal(err)
	}
	err := waitOrKill(t.Context(), hangs, time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("sleep 3600: %v, want it killed", err)
	}
	if hangs.ProcessState == nil {
		t.Fatal("sleep 3600 was not reaped")
	}
	if ws, ok := hangs.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("sleep 3600 ended %v, want killed and reaped", hangs.ProcessState)
	}
}
