package linux

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// TestBackoffPausesDoubleUpToMax checks the pauses between calls, with a
// sleep that only records them.
func TestBackoffPausesDoubleUpToMax(t *testing.T) {
	var pauses []time.Duration
	sleep = func(d time.Duration) { pauses = append(pauses, d) }
	t.Cleanup(func() { sleep = time.Sleep })
	calls := 0
	b := Backoff{First: time.Millisecond, Max: 8 * time.Millisecond, Total: time.Hour}
	done, err := b.Poll(func() (bool, error) { calls++; return calls == 7, nil })
	if !done || err != nil || calls != 7 {
		t.Fatalf("Poll: done %v, error %v after %d calls; want true, nil after 7", done, err, calls)
	}
	ms := time.Millisecond
	if want := []time.Duration{ms, 2 * ms, 4 * ms, 8 * ms, 8 * ms, 8 * ms}; !slices.Equal(pauses, want) {
		t.Errorf("pauses %v; want %v", pauses, want)
	}
}

func TestBackoffGivesUpAfterTotal(t *testing.T) {
	calls := 0
	b := Backoff{First: time.Millisecond, Max: time.Millisecond, Total: 20 * time.Millisecond}
	done, err := b.Poll(func() (bool, error) { calls++; return false, nil })
	if done || err != nil || calls < 2 {
		t.Errorf("Poll of what never ends: done %v, error %v after %d calls; want false, nil after several", done, err, calls)
	}
	failure := errors.New("no such file")
	calls = 0
	if _, err := b.Poll(func() (bool, error) { calls++; return false, failure }); !errors.Is(err, failure) || calls != 1 {
		t.Errorf("Poll of what fails: %v after %d calls; want %v after 1", err, calls, failure)
	}
}
