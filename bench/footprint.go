package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stack-containers/stack/internal/linux"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times; it is 100
// on every Linux ABI Go supports here.
const clockTicks = 100

// benchFootprint starts N idle containers with each system and measures
// the processes the system keeps beside them: their count, resident memory
// and CPU use while the containers idle.
func (h *harness) benchFootprint(ctx context.Context, res *results) {
	// took remembers how long a system needed at the previous N: one that
	// takes minutes is not asked for four times more.
	took := map[string]time.Duration{}
	for _, n := range h.cfg.footprintNs {
		for _, sys := range h.systems {
			if ctx.Err() != nil {
				return
			}
			if took[sys.name()] > 30*time.Second {
				h.skipped = append(h.skipped, skip{fmt.Sprintf("%s, footprint of %d", sys.name(), n), fmt.Sprintf("it took %s with fewer", took[sys.name()].Round(time.Second))})
				continue
			}
			t0 := time.Now()
			row := h.footprint(ctx, sys, n)
			took[sys.name()] = time.Since(t0)
			res.footprint = append(res.footprint, row)
			progress("footprint %s N=%d: %d processes, %.1f MB, %.2f%% CPU idle%s", sys.name(), n, row.processes, float64(row.rssKB)/1024, row.cpuIdle*100, errSuffix(errOf(row.err)))
		}
	}
}

func errOf(s string) error {
	if s == "" {
		return nil
	}
	return fmt.Errorf("%s", s)
}

func (h *harness) footprint(ctx context.Context, sys system, n int) footprintRow {
	row := footprintRow{system: sys.name(), containers: n}
	b := h.newBatch(n, sleepArgv())
	t := newTracker(h.watcher, b.argv)
	defer t.stop()
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	err := sys.start(ctx, b)
	if err == nil {
		err = t.untilExecs(ctx, n)
	}
	if err == nil {
		err = row.measure(ctx, t, h.cfg.idle)
	}
	if err != nil {
		row.err = cleanUp(ctx, sys, b, t, err).Error()
		return row
	}
	if err := sys.down(ctx, b); err != nil {
		row.err = "down: " + err.Error()
	} else if err := t.untilGone(ctx); err != nil {
		row.err = "after down: " + err.Error()
	}
	return row
}

// measure finds the system's processes (every ancestor of a container's
// PID 1 below the host's init and the harness) and reads their memory and
// their CPU time over an idle period.
func (row *footprintRow) measure(ctx context.Context, t *tracker, idle time.Duration) error {
	keep := map[int]bool{}
	for pid := range t.alive {
		for p := ppid(pid); p > 1 && p != os.Getpid(); p = ppid(p) {
			keep[p] = true
		}
	}
	pids := make([]int, 0, len(keep))
	for p := range keep {
		pids = append(pids, p)
	}
	slices.Sort(pids)
	// Let the start's garbage and buffers settle before reading memory.
	select {
	case <-time.After(500 * time.Millisecond):
	case <-ctx.Done():
		return ctx.Err()
	}
	before, switchesBefore := cpuTicks(pids), contextSwitches(pids)
	select {
	case <-time.After(idle):
	case <-ctx.Done():
		return ctx.Err()
	}
	row.cpuIdle = float64(cpuTicks(pids)-before) / clockTicks / idle.Seconds()
	row.wakeups = float64(contextSwitches(pids)-switchesBefore) / idle.Seconds()
	names := map[string]int{}
	for _, p := range pids {
		rss, err := vmRSS(p)
		if err != nil {
			return err
		}
		row.rssKB += rss
		names[comm(p)]++
	}
	row.processes = len(pids)
	var parts []string
	for name, count := range names {
		parts = append(parts, fmt.Sprintf("%d× %s", count, name))
	}
	slices.Sort(parts)
	row.names = strings.Join(parts, ", ")
	if row.names == "" {
		row.names = "none"
	}
	return nil
}

// ppid is the parent of pid, 0 if it is gone.
func ppid(pid int) int {
	st, err := linux.ReadStat(pid)
	if err != nil {
		return 0
	}
	return st.PPid
}

// cpuTicks sums user and system time of the processes still alive.
func cpuTicks(pids []int) int64 {
	var sum int64
	for _, pid := range pids {
		if st, err := linux.ReadStat(pid); err == nil {
			sum += int64(st.UTime + st.STime)
		}
	}
	return sum
}

// contextSwitches sums the context switches of every thread of the
// processes still alive: each wake-up of a sleeping thread is one.
func contextSwitches(pids []int) int64 {
	var sum int64
	for _, pid := range pids {
		tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
		if err != nil {
			continue
		}
		for _, task := range tasks {
			status := "/proc/" + strconv.Itoa(pid) + "/task/" + task.Name() + "/status"
			for _, field := range []string{"voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"} {
				n, _ := strconv.ParseInt(procField(status, field), 10, 64)
				sum += n
			}
		}
	}
	return sum
}

func vmRSS(pid int) (int64, error) {
	v := procField("/proc/"+strconv.Itoa(pid)+"/status", "VmRSS")
	kb, err := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("resident memory of pid %d: %q: %w", pid, v, err)
	}
	return kb, nil
}

func comm(pid int) string {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(raw))
}
