package linux

import "time"

// Backoff bounds a loop that waits for the kernel to get somewhere (a
// killed task leaving its cgroup, a netlink table to stop changing): the
// first pause, the longest pause (each pause doubles up to it), and the
// total time after which the loop gives up.
type Backoff struct {
	First, Max, Total time.Duration
}

// sleep is time.Sleep, which a test replaces to see the pauses.
var sleep = time.Sleep

// Poll calls fn until it reports done or fails, pausing between calls. It
// reports done=false if the total time ran out first.
func (b Backoff) Poll(fn func() (done bool, err error)) (bool, error) {
	deadline := time.Now().Add(b.Total)
	pause := b.First
	for {
		done, err := fn()
		if done || err != nil {
			return done, err
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		sleep(pause)
		pause = min(2*pause, b.Max)
	}
}
