package main

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The timed scenarios of the start section.
const (
	scenarioRunning  = "running"
	scenarioFinished = "finished"
	scenarioDown     = "down"
)

type cell struct {
	scenario, system string
	n                int
}

// results is everything one run measured, ready to print.
type results struct {
	machine machine
	cfg     config
	// systems are the compared systems in table order, the floor first.
	systems []string
	skipped []skip
	samples map[cell][]time.Duration
	// failures keeps the first error of a cell; its other runs may pass.
	failures  map[cell]string
	logs      []logResult
	oom       *oomResult
	footprint []footprintRow
	// load is the load average (one minute) at the start and the end of
	// each section: on a shared machine, what a number is worth.
	load map[string][2]float64
	// settled is how long each section waited for the CPUs to go idle
	// before it started (settle).
	settled map[string]settled
	// plot is the start plot's file beside the report; empty: none.
	plot string
	// problems are failures outside any cell (a section that could not
	// run, what the cleanup found left behind).
	problems []string
}

func newResults(cfg config) *results {
	return &results{cfg: cfg, samples: map[cell][]time.Duration{}, failures: map[cell]string{}, load: map[string][2]float64{}, settled: map[string]settled{}}
}

func (r *results) add(c cell, d time.Duration, err error) {
	if err != nil {
		if _, ok := r.failures[c]; !ok {
			r.failures[c] = err.Error()
		}
		return
	}
	r.samples[c] = append(r.samples[c], d)
}

// logResult is one log throughput measurement.
type logResult struct {
	containers int
	// bytes is what each container wrote.
	bytes int64
	// stack, catNull and catPipe are aggregate rates in MB/s (medians).
	stack, catNull, catPipe float64
	// verified says every line was found exactly once, in order.
	verified string
	err      string
}

// oomResult is the OOM kill to running again latency.
type oomResult struct {
	latencies []time.Duration
	oomKills  int
	err       string
}

// footprintRow is the resident memory and CPU of a system's own processes
// for n idle containers.
type footprintRow struct {
	system     string
	containers int
	// processes are the system's processes that stay alive beside the
	// containers (supervisor, conmon, shims), with their command names.
	processes int
	names     string
	rssKB     int64
	// cpuIdle is CPU time used per second while the containers idle.
	cpuIdle float64
	// wakeups are the context switches a second of the system's threads
	// while the containers idle: a timer shows there.
	wakeups float64
	err     string
}

// sortedCells orders cells by scenario, system and N, for a stable report.
func sortedCells(m map[cell]string) []cell {
	cells := make([]cell, 0, len(m))
	for c := range m {
		cells = append(cells, c)
	}
	slices.SortFunc(cells, func(a, b cell) int {
		return cmp.Or(cmp.Compare(a.scenario, b.scenario), cmp.Compare(a.system, b.system), cmp.Compare(a.n, b.n))
	})
	return cells
}

// loadOf is a section's load average, "start → end", or "–".
func (r *results) loadOf(section string) string {
	l, ok := r.load[section]
	if !ok {
		return "–"
	}
	return fmt.Sprintf("%.1f → %.1f", l[0], l[1])
}

// settled is one wait for the CPUs to go idle.
type settled struct {
	waited time.Duration
	idle   bool // false: settleMax passed first
}

// settledOf says how long a section waited for the CPUs to go idle.
func (r *results) settledOf(section string) string {
	s, ok := r.settled[section]
	switch {
	case !ok:
		return "–"
	case !s.idle:
		return fmt.Sprintf("%.1f s, not idle yet", s.waited.Seconds())
	}
	return fmt.Sprintf("%.1f s", s.waited.Seconds())
}

// loadAverage is the host's one-minute load average; 0 if unreadable.
func loadAverage() float64 {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(raw))
	if len(f) == 0 {
		return 0
	}
	l, _ := strconv.ParseFloat(f[0], 64)
	return l
}
