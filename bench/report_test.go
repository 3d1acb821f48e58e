package main

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestRenderRatiosAndTargets(t *testing.T) {
	cfg := config{rounds: 3, ns: []int{1, 50}}
	r := newResults(cfg)
	r.systems = []string{goFloorName, "stack up -d", "runc run"}
	for _, d := range []time.Duration{90, 100, 110} {
		r.add(cell{scenarioRunning, goFloorName, 50}, d*time.Millisecond, nil)
		r.add(cell{scenarioRunning, "stack up -d", 50}, 2*d*time.Millisecond, nil)
		r.add(cell{scenarioDown, "stack up -d", 50}, 250*time.Millisecond, nil)
		r.add(cell{scenarioDown, goFloorName, 50}, 200*time.Millisecond, nil)
	}
	r.add(cell{scenarioRunning, "runc run", 50}, 0, errors.New("runc: exit status 1:\nno | way"))
	r.add(cell{scenarioRunning, "runc run", 1}, 30*time.Millisecond, nil)
	r.skipped = []skip{{"crun run", "cgroups in hybrid mode not supported"}}
	r.logs = []logResult{{containers: 1, bytes: 256 << 20, stack: 600, catNull: 1000, catPipe: 800, verified: allLines}}
	r.oom = &oomResult{latencies: []time.Duration{5 * time.Millisecond, 30 * time.Millisecond, 7 * time.Millisecond}}
	r.footprint = []footprintRow{{system: "stack up -d", containers: 200, processes: 1, names: "1× exe", rssKB: 40 << 10}}

	out := render(r)
	for _, want := range []string{
		"| stack up -d | – | 200.0 ms (2.00×) |",
		"| runc run | 30.0 ms [1 of 12 runs] | failed |",
		"exec'd (kernel process events); median of 3 rounds, 4 measurements a round at N=1 (ratio to the Go floor)",
		"every container has ended; median of 3 rounds (ratio to the Go floor)",
		"| 50 containers all running, `up -d`, `network: none`: ≤ 3× the Go floor (aim 2×) | stack up -d 200.0 ms, floor (Go clone+chroot) 100.0 ms: 2.00× | yes |",
		"the stack network: ≤ 3× the Go floor with a veth pair each | – | not measured |",
		"| `down` of 50: ≤ the Go floor's teardown + 30 ms | stack down 250.0 ms, floor teardown 200.0 ms: +50.0 ms | **no** |",
		"600 MB/s vs cat | cat 800 MB/s (0.75×); all lines present | yes |",
		"median 7.0 ms over 3 restarts, backoff 0s | yes |",
		"40.0 MB for 200: 0.200 MB per container; 0.0 wake-ups/s idle | yes |",
		"- crun run: skipped: cgroups in hybrid mode not supported",
		"- runc run, N=50, running: failed: runc: exit status 1: no / way",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("report:\n%s", out)
	}
}

func TestVersionLine(t *testing.T) {
	podmanCompose := "['podman', '--version', '']\nusing podman version: 4.3.1\npodman-composer version  1.0.3\npodman --version \npodman version 4.3.1\nexit code: 0\n"
	if got := versionLine(podmanCompose, "podman-compose"); got != "podman-composer version 1.0.3" {
		t.Errorf("podman-compose: %q", got)
	}
	if got := versionLine("runc version 1.1.5+ds1\ncommit: v1.1.5\nspec: 1.0.2-dev\n", "runc"); got != "runc version 1.1.5+ds1" {
		t.Errorf("runc: %q", got)
	}
	if got := versionLine("1.29.2\n", "docker-compose"); got != "1.29.2" {
		t.Errorf("docker-compose: %q", got)
	}
}

// The plot is well-formed SVG with a line for each system measured.
func TestPlotStart(t *testing.T) {
	r := newResults(config{rounds: 1, ns: []int{1, 10, 50}})
	r.systems = []string{goFloorName, "stack up -d", "runc run"}
	for i, n := range r.cfg.ns {
		r.add(cell{scenarioRunning, goFloorName, n}, time.Duration(i+1)*10*time.Millisecond, nil)
		r.add(cell{scenarioRunning, "stack up -d", n}, time.Duration(i+1)*25*time.Millisecond, nil)
	}
	svg := plotStart(r)
	d := xml.NewDecoder(strings.NewReader(svg))
	lines := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, svg)
		}
		if el, ok := tok.(xml.StartElement); ok && el.Name.Local == "polyline" {
			lines++
		}
	}
	if lines != 2 || !strings.Contains(svg, "stack up -d, N=50: 75.0 ms") || strings.Contains(svg, "runc run") {
		t.Errorf("%d lines, want one for each of the two measured systems:\n%s", lines, svg)
	}
	if plotStart(newResults(config{ns: []int{1}})) != "" {
		t.Error("a plot of nothing")
	}
}

// TestSignedMs: a down faster than its floor reads as a difference below
// zero, not "+-".
func TestSignedMs(t *testing.T) {
	for d, want := range map[time.Duration]string{4600 * time.Microsecond: "+4.6 ms", -4600 * time.Microsecond: "−4.6 ms", 0: "+0.0 ms"} {
		if got := signedMs(d); got != want {
			t.Errorf("signedMs(%v) = %q, want %q", d, got, want)
		}
	}
}
