package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run())
}

func run() int {
	var cfg config
	var sections, ns string
	flag.BoolVar(&cfg.quick, "quick", false, "fewer rounds: done in about two minutes")
	flag.StringVar(&cfg.stackBin, "stack", "bin/stack", "the stack binary under test")
	flag.StringVar(&cfg.out, "out", "", "write the report (markdown) to this file too")
	flag.IntVar(&cfg.rounds, "rounds", 0, "rounds of each measurement (default 5, quick 2)")
	flag.StringVar(&sections, "sections", "", "comma-separated subset of start,logs,oom,footprint")
	flag.StringVar(&ns, "n", "", "comma-separated container counts of the start and teardown benchmarks (default 1,10,50,200, quick 1,10,50)")
	flag.Parse()
	if sections != "" {
		cfg.sections = strings.Split(sections, ",")
	}
	if ns == "" {
		ns = "1,10,50,200"
		if cfg.quick {
			ns = "1,10,50"
		}
	}
	for _, f := range strings.Split(ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench: error: -n: %q is not a container count\n", f)
			return 2
		}
		cfg.ns = append(cfg.ns, n)
	}
	cfg.footprintNs = []int{1, 50, 200}
	cfg.oomRuns = 20
	cfg.logBytes = logDataSize
	cfg.idle = 5 * time.Second
	// Only a -rounds left unset takes the mode's default: -quick -rounds 5
	// runs five.
	if cfg.rounds == 0 {
		cfg.rounds = 5
		if cfg.quick {
			cfg.rounds = 2
		}
	}
	if cfg.quick {
		cfg.footprintNs = []int{1, 50}
		cfg.oomRuns = 10
		cfg.idle = time.Second
	}

	// The first Ctrl-C stops measuring; the cleanup then still runs.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	res := newResults(cfg)
	res.machine = describeMachine(ctx, cfg.stackBin)
	h, err := newHarness(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: error: %v\n", err)
		if h != nil {
			if cerr := h.close(context.WithoutCancel(ctx)); cerr != nil {
				fmt.Fprintf(os.Stderr, "bench: error: clean up: %v\n", cerr)
			}
		}
		return 1
	}
	h.measure(ctx, res)
	if err := h.close(context.WithoutCancel(ctx)); err != nil {
		res.problems = append(res.problems, "cleanup: "+err.Error())
	}

	plot := plotStart(res)
	if cfg.out != "" && plot != "" {
		res.plot = plotName
	}
	report := render(res)
	fmt.Print(report)
	if cfg.out != "" {
		if err := os.MkdirAll(filepath.Dir(cfg.out), 0o755); err != nil {
			fmt.Fprintf(os.Stderr, "bench: error: make report directory: %v\n", err)
			return 1
		}
		if plot != "" {
			if err := os.WriteFile(filepath.Join(filepath.Dir(cfg.out), plotName), []byte(plot), 0o644); err != nil {
				fmt.Fprintf(os.Stderr, "bench: error: write plot: %v\n", err)
				return 1
			}
		}
		if err := os.WriteFile(cfg.out, []byte(report), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "bench: error: write report: %v\n", err)
			return 1
		}
	}
	if len(res.problems) > 0 || ctx.Err() != nil {
		return 1
	}
	return 0
}

// measure runs the sections asked for, in the order of the report.
func (h *harness) measure(ctx context.Context, res *results) {
	for _, sys := range h.systems {
		res.systems = append(res.systems, sys.name())
	}
	sections := []struct {
		name string
		run  func(context.Context, *results)
	}{{"start", h.benchStart}, {"logs", h.benchLogs}, {"oom", h.benchOOM}, {"footprint", h.benchFootprint}}
	for _, sec := range sections {
		if h.cfg.wants(sec.name) {
			waited, idle := settle(ctx)
			res.settled[sec.name] = settled{waited, idle}
			before := loadAverage()
			sec.run(ctx, res)
			res.load[sec.name] = [2]float64{before, loadAverage()}
		}
	}
	res.skipped = h.skipped
}
