package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// opTimeout only keeps a hung peer from hanging the run; nothing is
// asserted against it.
const opTimeout = 3 * time.Minute

// slowRun is the time above which a cell is not measured again.
const slowRun = 5 * time.Second

// benchStart measures, for every N and every system, the time to all
// running, the teardown of those, and the time to all finished. The
// systems take turns in an order rotated each round, so that noise from
// the machine falls on all of them alike.
//
// A system that took over slowRun for a cell is measured there once only:
// the compose tools take a minute for 50 containers, and at hundreds of
// times the floor more runs would not change what the table says.
func (h *harness) benchStart(ctx context.Context, res *results) {
	slow := map[cell]bool{}
	for round := range h.cfg.rounds {
		for _, n := range h.cfg.ns {
			for rep := range repeatsAt(n) {
				for _, sys := range rotate(h.systems, round*repeatsAt(n)+rep) {
					c := cell{scenarioRunning, sys.name(), n}
					if ctx.Err() != nil {
						return
					}
					if slow[c] {
						continue
					}
					b := h.newBatch(n, sleepArgv())
					running, down, err := measureStart(ctx, h.watcher, sys, b, opTimeout)
					res.add(cell{scenarioRunning, sys.name(), n}, running, err)
					res.add(cell{scenarioDown, sys.name(), n}, down, err)
					slow[c] = running+down > slowRun
					progress("round %d/%d N=%d %s: running %s, down %s%s", round+1, h.cfg.rounds, n, sys.name(), ms(running), ms(down), errSuffix(err))
				}
			}
			for _, sys := range rotate(h.systems, round) {
				c := cell{scenarioFinished, sys.name(), n}
				if ctx.Err() != nil {
					return
				}
				if slow[c] {
					continue
				}
				b := h.newBatch(n, []string{"/bin/true"})
				d, err := measureRun(ctx, sys, b, opTimeout)
				if errors.Is(err, errPodmanWait) || errors.Is(err, errNotMeasured) {
					h.skipped = append(h.skipped, skip{fmt.Sprintf("%s, N=%d, finished", sys.name(), n), err.Error()})
					slow[c] = true
					continue
				}
				res.add(c, d, err)
				slow[c] = d > slowRun
				progress("round %d/%d N=%d %s: finished %s%s", round+1, h.cfg.rounds, n, sys.name(), ms(d), errSuffix(err))
			}
		}
	}
}

// smallRepeats is how many times a round measures the start and teardown
// of one container: a start of one takes some 10–30 ms, where one hiccup
// of the machine moves a median of five, and twenty cost a second or two.
const smallRepeats = 4

// repeatsAt is how many times a round measures the start of n containers.
func repeatsAt(n int) int {
	if n == 1 {
		return smallRepeats
	}
	return 1
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return " FAILED: " + err.Error()
}

// ms prints a duration in milliseconds, the unit of every table.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

// signedMs is ms with its sign, + or − (a down can beat its floor).
func signedMs(d time.Duration) string {
	if d < 0 {
		return "−" + ms(-d)
	}
	return "+" + ms(d)
}
