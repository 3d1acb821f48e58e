package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"time"
)

// The kernel tears a network namespace down in a worker after its last
// process has gone, and a section that follows 200-container rounds would
// otherwise measure beside that work (the logs section used to start at a
// load average of 19). settle waits, before a section and before each logs
// measurement, until the CPUs have been idle for settleQuiet windows in a
// row, or settleMax has passed.
const (
	settleWindow = 250 * time.Millisecond
	settleQuiet  = 2
	settleIdle   = 0.9 // share of the CPUs' time idle in a window
	settleMax    = 30 * time.Second
)

// settle returns how long it waited, and whether the machine went idle.
func settle(ctx context.Context) (time.Duration, bool) {
	start := time.Now()
	prev, ok := cpuTimes()
	if !ok {
		return 0, false
	}
	quiet := 0
	for time.Since(start) < settleMax {
		select {
		case <-ctx.Done():
			return time.Since(start), false
		case <-time.After(settleWindow):
		}
		cur, ok := cpuTimes()
		if !ok {
			return time.Since(start), false
		}
		total, idle := cur.total-prev.total, cur.idle-prev.idle
		prev = cur
		if total > 0 && float64(idle)/float64(total) >= settleIdle {
			quiet++
			if quiet == settleQuiet {
				return time.Since(start), true
			}
		} else {
			quiet = 0
		}
	}
	return time.Since(start), false
}

type cpuTime struct{ total, idle uint64 }

// cpuTimes reads the first line of /proc/stat: all CPUs' time in ticks,
// and the part of it idle or waiting for I/O.
func cpuTimes() (cpuTime, bool) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTime{}, false
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return cpuTime{}, false
	}
	var t cpuTime
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return cpuTime{}, false
		}
		// user nice system idle iowait irq softirq steal; guest and
		// guest_nice are already in user and nice.
		if i >= 8 {
			break
		}
		t.total += n
		if i == 3 || i == 4 {
			t.idle += n
		}
	}
	return t, true
}
