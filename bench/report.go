package main

import (
	_ "embed"
	"fmt"
	"slices"
	"strings"
	"time"
)

// analysis is what the profiles said, written by hand; it follows the
// tables in every report.
//
//go:embed analysis.md
var analysis string

// shellFloorName is the floor from a shell, kept beside the Go floor.
const shellFloorName = "floor (unshare+chroot)"

// render writes the report as markdown: it reads well in a terminal and is
// docs/benchmarks.md as is.
func render(r *results) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	mode := "full"
	if r.cfg.quick {
		mode = "quick"
	}
	w("# Benchmarks\n\n")
	w("Measured by `make bench` (the harness is in `bench/`, see `bench/doc.go`) on %s, %s mode.\n", r.machine.Date.Format("2006-01-02 15:04 MST"), mode)
	w("Every number is a median over the runs stated; ratios are to the floor measured in the same run.\n")
	w("The rows of a table were measured interleaved, in an order rotated each round.\n\n")

	w("## Machine\n\n")
	w("| | |\n|---|---|\n")
	w("| kernel | %s |\n| CPU | %s, %d cores |\n| memory | %s |\n| cgroups | %s |\n| Go | %s |\n",
		r.machine.Kernel, r.machine.CPU, r.machine.Cores, r.machine.Memory, r.machine.Cgroups, r.machine.Go)
	for _, v := range r.machine.Versions {
		w("| %s | %s |\n", v.Tool, v.Version)
	}
	w("\n")

	renderTargets(&b, r)

	if len(r.samples)+len(r.failures) > 0 {
		titles := []struct{ scenario, title, what string }{
			{scenarioRunning, "Start: N containers to all running", "`/bin/sleep`; from launch until the tool returned and every container's program has exec'd (kernel process events)"},
			{scenarioFinished, "Start: N containers to all finished", "`/bin/true`; from launch until every container has ended"},
			{scenarioDown, "Teardown: down of N running containers", "from the teardown command until it returned; every program is then checked gone"},
		}
		if r.plot != "" {
			w("![Time until all N containers run, for each system](%s)\n\n", r.plot)
		}
		for _, t := range titles {
			rounds := fmt.Sprintf("%d rounds", r.cfg.rounds)
			if t.scenario != scenarioFinished && slices.Contains(r.cfg.ns, 1) {
				rounds += fmt.Sprintf(", %d measurements a round at N=1", smallRepeats)
			}
			w("## %s\n\n%s; median of %s (ratio to the Go floor); load average %s.\n\n", t.title, t.what, rounds, r.loadOf("start"))
			renderStartTable(&b, r, t.scenario)
		}
	}
	if len(r.logs) > 0 {
		renderLogs(&b, r)
	}
	if r.oom != nil {
		renderOOM(&b, r.oom)
	}
	if len(r.footprint) > 0 {
		renderFootprint(&b, r)
	}
	if len(r.skipped)+len(r.failures)+len(r.problems) > 0 {
		w("## Skipped and failed\n\n")
		for _, s := range r.skipped {
			w("- %s: skipped: %s\n", s.System, oneLine(s.Reason))
		}
		for _, c := range sortedCells(r.failures) {
			w("- %s, N=%d, %s: failed: %s\n", c.system, c.n, c.scenario, oneLine(r.failures[c]))
		}
		for _, p := range r.problems {
			w("- %s\n", oneLine(p))
		}
		w("\n")
	}
	b.WriteString(analysis)
	w("\n")
	b.WriteString(method)
	return b.String()
}

func renderStartTable(b *strings.Builder, r *results, scenario string) {
	fmt.Fprintf(b, "| system |")
	for _, n := range r.cfg.ns {
		fmt.Fprintf(b, " N=%d |", n)
	}
	fmt.Fprintf(b, "\n|---|")
	for range r.cfg.ns {
		fmt.Fprintf(b, "---:|")
	}
	fmt.Fprintf(b, "\n")
	for _, sys := range r.systems {
		fmt.Fprintf(b, "| %s |", sys)
		for _, n := range r.cfg.ns {
			fmt.Fprintf(b, " %s |", r.startCell(cell{scenario, sys, n}))
		}
		fmt.Fprintf(b, "\n")
	}
	fmt.Fprintf(b, "\n")
}

// startCell is "median (ratio×)", or why there is none.
func (r *results) startCell(c cell) string {
	s := r.samples[c]
	if len(s) == 0 {
		if _, failed := r.failures[c]; failed {
			return "failed"
		}
		return "–"
	}
	m := median(s)
	text := ms(m)
	if f := r.samples[cell{c.scenario, goFloorName, c.n}]; len(f) > 0 && c.system != goFloorName {
		text += fmt.Sprintf(" (%.2f×)", float64(m)/float64(median(f)))
	}
	if _, failed := r.failures[c]; failed {
		text += fmt.Sprintf(" [%d ok]", len(s))
	} else if want := r.runsOf(c); len(s) < want {
		// A slow peer is measured once; say so rather than call it a median.
		text += fmt.Sprintf(" [%d of %d runs]", len(s), want)
	}
	return text
}

// runsOf is how many times the start section measures cell c: once a
// round, and smallRepeats times for the start and teardown of one
// container.
func (r *results) runsOf(c cell) int {
	if c.scenario == scenarioFinished {
		return r.cfg.rounds
	}
	return r.cfg.rounds * repeatsAt(c.n)
}

// target is one of issue 18's goals, judged on this run's medians.
type target struct {
	goal, measured string
	// met is "yes", "no" or "not measured".
	met string
}

func renderTargets(b *strings.Builder, r *results) {
	ts := r.targets()
	fmt.Fprintf(b, "## Targets\n\nIssue 18's goals, as ratios to the floor measured in the same run; load average (one minute, at the start and the end of each section): start %s, logs %s, footprint %s. Before each section, and before each logs measurement, the harness waits until the CPUs are idle (idle at least %.0f%% of %d windows of %s in a row, at most %s; the kernel tears down the namespaces of the last rounds meanwhile); the sections waited: start %s, logs %s, OOM %s, footprint %s.\n\n", r.loadOf("start"), r.loadOf("logs"), r.loadOf("footprint"), settleIdle*100, settleQuiet, settleWindow, settleMax, r.settledOf("start"), r.settledOf("logs"), r.settledOf("oom"), r.settledOf("footprint"))
	fmt.Fprintf(b, "| target | measured | met |\n|---|---|---|\n")
	for _, t := range ts {
		fmt.Fprintf(b, "| %s | %s | %s |\n", t.goal, t.measured, t.met)
	}
	fmt.Fprintf(b, "\n")
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// ratioTarget judges the median of system against at most limit times the
// median of floor, both at N=n.
func (r *results) ratioTarget(goal, scenario, system, floor string, n int, limit float64) target {
	t := target{goal: goal, met: "not measured", measured: "–"}
	s, f := r.samples[cell{scenario, system, n}], r.samples[cell{scenario, floor, n}]
	if len(s) > 0 && len(f) > 0 {
		ratio := float64(median(s)) / float64(median(f))
		t.measured = fmt.Sprintf("%s %s, %s %s: %.2f×", system, ms(median(s)), floor, ms(median(f)), ratio)
		t.met = yesNo(ratio <= limit)
	}
	return t
}

// downSlack is what `down` of 50 may take beyond the floor's teardown.
const downSlack = 30 * time.Millisecond

// idleWakeups is the most wake-ups a second of an idle supervisor that
// counts as having no timer: the Go runtime's own (a forced collection
// every two minutes) stay below it.
const idleWakeups = 1.0

func (r *results) targets() []target {
	var ts []target
	const big = 50
	ts = append(ts,
		r.ratioTarget("50 containers all running, `up -d`, `network: none`: ≤ 3× the Go floor (aim 2×)", scenarioRunning, "stack up -d", goFloorName, big, 3),
		r.ratioTarget("50 containers all running, `up -d`, the stack network: ≤ 3× the Go floor with a veth pair each", scenarioRunning, "stack up -d (stack network)", vethFloorName, big, 3),
		r.ratioTarget("one container, `up -d` to running: ≤ 2× the Go floor", scenarioRunning, "stack up -d", goFloorName, 1, 2))
	t := target{goal: "`down` of 50: ≤ the Go floor's teardown + 30 ms", met: "not measured", measured: "–"}
	d, f := r.samples[cell{scenarioDown, "stack up -d", big}], r.samples[cell{scenarioDown, goFloorName, big}]
	if len(d) > 0 && len(f) > 0 {
		t.measured = fmt.Sprintf("stack down %s, floor teardown %s: %s", ms(median(d)), ms(median(f)), signedMs(median(d)-median(f)))
		t.met = yesNo(median(d) <= median(f)+downSlack)
	}
	ts = append(ts, t)
	for _, l := range r.logs {
		t = target{goal: fmt.Sprintf("logs, %d container(s): ≥ 50%% of a plain pipe (`cat | cat`), every line persisted", l.containers), met: "not measured", measured: "–"}
		if l.err == "" && l.catPipe > 0 {
			t.measured = fmt.Sprintf("%.0f MB/s vs cat | cat %.0f MB/s (%.2f×); %s", l.stack, l.catPipe, l.stack/l.catPipe, l.verified)
			t.met = yesNo(l.stack >= l.catPipe/2 && l.verified == allLines)
		} else if l.err != "" {
			t.measured = "failed"
			t.met = "**no**"
		}
		ts = append(ts, t)
	}
	t = target{goal: "OOM kill to running again within 20 ms plus backoff (issue 7)", met: "not measured", measured: "–"}
	if r.oom != nil && len(r.oom.latencies) > 0 {
		m := median(r.oom.latencies)
		t.measured = fmt.Sprintf("median %s over %d restarts, backoff %s", ms(m), len(r.oom.latencies), oomBackoff)
		t.met = yesNo(m <= 20*time.Millisecond+oomBackoff)
	}
	ts = append(ts, t)
	t = target{goal: "supervisor ≤ 0.3 MB resident per idle container at 200, no timer while idle", met: "not measured", measured: "–"}
	for _, f := range r.footprint {
		if f.system == "stack up -d" && f.containers == 200 && f.err == "" {
			per := float64(f.rssKB) / 1024 / float64(f.containers)
			t.measured = fmt.Sprintf("%.1f MB for 200: %.3f MB per container; %.1f wake-ups/s idle", float64(f.rssKB)/1024, per, f.wakeups)
			t.met = yesNo(per <= 0.3 && f.wakeups < idleWakeups)
		}
	}
	return append(ts, t)
}

func renderLogs(b *strings.Builder, r *results) {
	fmt.Fprintf(b, "## Logs\n\nEach container `cat`s a file of numbered 100-byte lines to its stdout as fast as it can; stack runs them in the foreground (`stack up > /dev/null`) with their logs persisted, timed from the first container's exec to the last one's exit (kernel process events; stack's start and teardown are the start table's, and the last pipeful, at most 256 KiB, is read after). The floors `cat` the same files, in parallel, into `/dev/null`, and through a pipe into another `cat` (the one hop any log capture adds). Every line is then checked in `stack logs`. Aggregate MB/s (MB = 10⁶ bytes), median of %d runs; load average %s. What a supervisor crash can lose: it holds nothing back between reads; each read from a container's pipe (at most 256 KiB) is written to its file in one write(2) before the next read, and persists every line written before that read began. A crash so loses at most the round in progress and what waits in the pipe, at most 256 KiB each: lines at most two rounds old (D: a round is well under a millisecond while the capture has a core, longer while it waits for one or a write to the disk blocks, and the container then blocks on its pipe; see supervisor/logs/doc.go).\n\n", r.cfg.rounds, r.loadOf("logs"))
	fmt.Fprintf(b, "| containers | per container | stack | cat → /dev/null | stack / cat | cat \\| cat → /dev/null | stack / pipe | lines |\n|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, l := range r.logs {
		if l.err != "" {
			fmt.Fprintf(b, "| %d | %s | failed | %.0f MB/s | | %.0f MB/s | | %s |\n", l.containers, mib(l.bytes), l.catNull, l.catPipe, oneLine(l.err))
			continue
		}
		fmt.Fprintf(b, "| %d | %s | %.0f MB/s | %.0f MB/s | %.2f× | %.0f MB/s | %.2f× | %s |\n",
			l.containers, mib(l.bytes), l.stack, l.catNull, l.stack/l.catNull, l.catPipe, l.stack/l.catPipe, l.verified)
	}
	fmt.Fprintf(b, "\n")
}

func renderOOM(b *strings.Builder, o *oomResult) {
	fmt.Fprintf(b, "## OOM kill to running again\n\n")
	fmt.Fprintf(b, "A container with a 16 MB limit and `restart: {policy: on-oom, backoff: %[1]s}` doubles a shell string until the kernel's OOM killer ends it, over and over. Each latency is from the kernel's exit event of the killed program to the exec event of its successor, backoff included.\n\n", oomBackoff)
	if o.err != "" {
		fmt.Fprintf(b, "Failed: %s\n\n", oneLine(o.err))
	}
	if len(o.latencies) > 0 {
		fmt.Fprintf(b, "| restarts | median | min | max | OOM kills (stack ps) |\n|---:|---:|---:|---:|---:|\n")
		lo, hi := o.latencies[0], o.latencies[0]
		for _, l := range o.latencies {
			lo, hi = min(lo, l), max(hi, l)
		}
		fmt.Fprintf(b, "| %d | %s | %s | %s | %d |\n\n", len(o.latencies), ms(median(o.latencies)), ms(lo), ms(hi), o.oomKills)
	}
}

func renderFootprint(b *strings.Builder, r *results) {
	fmt.Fprintf(b, "## Footprint\n\nN idle `sleep` containers; the processes a system keeps alive beside them (found by walking up from each container's PID 1 to the host's init), their total resident memory (VmRSS) and their CPU use and wake-ups (context switches of all their threads) a second while idle, over %s; load average %s.\n\n", r.cfg.idle, r.loadOf("footprint"))
	fmt.Fprintf(b, "| system | containers | processes | resident | per container | idle CPU | wake-ups/s |\n|---|---:|---|---:|---:|---:|---:|\n")
	for _, f := range r.footprint {
		if f.err != "" {
			fmt.Fprintf(b, "| %s | %d | failed: %s | | | | |\n", f.system, f.containers, oneLine(f.err))
			continue
		}
		fmt.Fprintf(b, "| %s | %d | %d (%s) | %.1f MB | %.3f MB | %.2f%% | %.1f |\n", f.system, f.containers, f.processes, f.names,
			float64(f.rssKB)/1024, float64(f.rssKB)/1024/float64(f.containers), f.cpuIdle*100, f.wakeups)
	}
	fmt.Fprintf(b, "\n")
}

func mib(bytes int64) string { return fmt.Sprintf("%.0f MiB", float64(bytes)/(1<<20)) }

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "|", "/")), " ")
}

// method says how the numbers were taken, for a reader who doubts them.
const method = `## How it is measured

- The Go floor (` + "`bench/gofloor.go`" + `), every ratio's base, is the least a runner in Go can do: for each container ` + "`mkdir`" + ` a memory cgroup, then one clone with new pid, mount, uts, ipc and net namespaces and a chroot into the rootfs (os/exec's SysProcAttr); on cgroup v2 the clone places the child in its cgroup (CLONE_INTO_CGROUP), on v1 its pid is written to the cgroup right after the start; all N launched at once from goroutines. Its teardown SIGKILLs each PID 1, reaps it and removes the cgroup. It has no overlay, no /dev, no pivot_root, no seccomp, no device rules and no log capture, which stack does. The veth floor adds a veth pair per container, one end in the container's namespace and one, brought up, in a network namespace the harness makes; stack's row with its own network (bridge, veths, addresses, rules) runs in that namespace too, never the host's.
- The shell floor is the same from a shell: ` + "`mkdir`" + ` a memory cgroup and join it, then ` + "`unshare -fpmui --mount-proc=ROOTFS/proc chroot ROOTFS CMD`" + ` (no net namespace), N in parallel.
- All systems run the same busybox rootfs (` + "`internal/busybox`" + `); runc and crun get an OCI bundle made from their own ` + "`spec`" + ` defaults with the rootfs read-only, one ` + "`run`" + ` per container, all in parallel; the compose tools get an image imported from the rootfs and one service per container.
- "Running" is read from the kernel's process events connector: the harness subscribes once and timestamps, with the kernel's clock, the exec of each container's program (a sleep of a random length no other process uses). It does not poll, so it takes no CPU from what is measured.
- "Finished" for the detached rows is the tool's own view: ` + "`stack up -d`" + ` then ` + "`stack ps --format json`" + ` every 5 ms until every container has ended; the compose tools' ` + "`up -d`" + ` then ` + "`podman wait`" + ` (or ` + "`docker wait`" + `). A peer that took over 5 s in a cell is measured there once.
- Teardown gives peers no grace period (` + "`down -t 0`, `delete --force`" + `): the containers' PID 1 ignores SIGTERM, and stack kills such a container at once too.
- Each run uses its own state directory, cgroup parent (` + "`stack-bench-<random>`" + `) and container names; it removes them at the end and reports any process, cgroup or mount a system left behind.
- The machine is shared and noisy; medians, interleaving and rotation blunt that, nothing removes it. No number here is asserted by a test.
`
