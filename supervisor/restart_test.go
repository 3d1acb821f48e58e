package supervisor

import (
	"testing"
	"time"

	"github.com/stack-containers/stack/manifest"
)

// fakeClock is a Clock whose time moves only when the test says so.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

func (c *fakeClock) advance(d time.Duration) { c.now = c.now.Add(d) }

var (
	exitOK   = Ending{}
	exitFail = Ending{Code: 3}
	exitSig  = Ending{Code: 128 + 9, Signaled: true}
	exitOOM  = Ending{Code: 128 + 9, Signaled: true, OOM: true}
)

func TestRestartPolicyWhen(t *testing.T) {
	tests := []struct {
		policy manifest.Policy
		ending Ending
		want   bool
	}{
		{manifest.RestartNo, exitFail, false},
		{manifest.RestartNo, exitOOM, false},
		{manifest.RestartOnFailure, exitOK, false},
		{manifest.RestartOnFailure, exitFail, true},
		{manifest.RestartOnFailure, exitSig, true},
		{manifest.RestartOnFailure, exitOOM, true},
		{manifest.RestartOnOOM, exitOK, false},
		{manifest.RestartOnOOM, exitFail, false},
		{manifest.RestartOnOOM, exitSig, false},
		{manifest.RestartOnOOM, exitOOM, true},
		{manifest.RestartAlways, exitOK, true},
		{manifest.RestartAlways, exitFail, true},
		{manifest.RestartAlways, exitOOM, true},
	}
	for _, tt := range tests {
		for _, stopped := range []bool{false, true} {
			e := tt.ending
			e.Stopped = stopped
			r := NewRestarter(manifest.RestartPolicy{Policy: tt.policy, Backoff: time.Second, MaxBackoff: time.Minute}, &fakeClock{})
			r.Started()
			got := r.Ended(e)
			want := tt.want && !stopped
			if got.Restart != want || got.GaveUp {
				t.Errorf("%s after %+v: got %+v, want restart=%v", tt.policy, e, got, want)
			}
		}
	}
}

func TestRestartBackoffDoublesAndCaps(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	r := NewRestarter(manifest.RestartPolicy{
		Policy: manifest.RestartOnFailure, Backoff: 100 * time.Millisecond, MaxBackoff: time.Second,
	}, clock)
	want := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
	for i, w := range want {
		r.Started()
		clock.advance(time.Second) // each run lasts a second: well under the reset
		d := r.Ended(exitFail)
		if !d.Restart || d.Delay != w*time.Millisecond || d.Attempt != i+1 {
			t.Fatalf("restart %d: got %+v, want delay %v attempt %d", i+1, d, w*time.Millisecond, i+1)
		}
		<-clock.After(d.Delay)
	}
	if r.Restarts() != len(want) {
		t.Errorf("Restarts() = %d, want %d", r.Restarts(), len(want))
	}
}

func TestRestartBackoffResetsAfterTenSecondsOfRunning(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	r := NewRestarter(manifest.RestartPolicy{
		Policy: manifest.RestartAlways, Backoff: time.Second, MaxBackoff: time.Minute,
	}, clock)
	run := func(lasted time.Duration) time.Duration {
		r.Started()
		clock.advance(lasted)
		d := r.Ended(exitOK)
		if !d.Restart {
			t.Fatalf("always did not restart: %+v", d)
		}
		<-clock.After(d.Delay)
		return d.Delay
	}
	for i, step := range []struct {
		lasted time.Duration
		want   time.Duration
	}{
		{time.Millisecond, time.Second},
		{time.Millisecond, 2 * time.Second},
		{9999 * time.Millisecond, 4 * time.Second}, // just short of the reset
		{10 * time.Second, time.Second},            // ran long enough: reset
		{time.Millisecond, 2 * time.Second},
	} {
		if got := run(step.lasted); got != step.want {
			t.Errorf("restart %d after running %v: delay %v, want %v", i+1, step.lasted, got, step.want)
		}
	}
}

func TestRestartMaxRetries(t *testing.T) {
	clock := &fakeClock{}
	r := NewRestarter(manifest.RestartPolicy{
		Policy: manifest.RestartOnOOM, MaxRetries: 2, Backoff: 10 * time.Millisecond, MaxBackoff: time.Second,
	}, clock)
	for i := 1; i <= 2; i++ {
		r.Started()
		d := r.Ended(exitOOM)
		if !d.Restart || d.Attempt != i {
			t.Fatalf("OOM %d: got %+v, want restart attempt %d", i, d, i)
		}
		if got, want := d.describe(2), []string{"", "attempt 1 of 2", "attempt 2 of 2"}[i]; got != want {
			t.Errorf("describe = %q, want %q", got, want)
		}
	}
	r.Started()
	if d := r.Ended(exitOOM); d.Restart || !d.GaveUp {
		t.Fatalf("third OOM: got %+v, want gave up", d)
	}
	if r.Restarts() != 2 {
		t.Errorf("Restarts() = %d, want 2", r.Restarts())
	}
}

func TestRestartUnlimitedRetries(t *testing.T) {
	r := NewRestarter(manifest.RestartPolicy{Policy: manifest.RestartOnFailure, MaxBackoff: time.Second}, &fakeClock{})
	for i := 1; i <= 1000; i++ {
		r.Started()
		if d := r.Ended(exitFail); !d.Restart || d.Attempt != i || d.Delay != 0 {
			t.Fatalf("restart %d with max_retries 0: got %+v", i, d)
		}
	}
	if got := (Decision{Attempt: 7}).describe(0); got != "attempt 7" {
		t.Errorf("describe(0) = %q", got)
	}
}
