package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRenderRatiosAndTargets(t *testing.T) {
	cfg := config{rounds: 3, ns: []int{1, 50}}
	r := newResults(cfg)
	r.systems = []string{floorName, "stack up -d", "runc run"}
	for _, d := range []time.Duration{90, 100, 110} {
		r.add(cell{scenarioRunning, floorName, 50}, d*time.Millisecond, nil)
		r.add(cell{scenarioRunning, "stack up -d", 50}, 2*d*time.Millisecond, nil)
		r.add(cell{scenarioDown, "stack up -d", 50}, 250*time.Millisecond, nil)
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
		"| runc run | 30.0 ms [1 of 3 runs] | failed |",
		"| 50 containers all running within 1.5× the floor | stack up -d 200.0 ms, floor 100.0 ms: 2.00× | **no** |",
		"| 50 containers all running faster than crun | crun skipped or failed | not measured |",
		"| `down` of 50 containers within 300 ms | stack down 250.0 ms | yes |",
		"600 MB/s vs cat→/dev/null 1000 MB/s (0.60×); all lines present | yes |",
		"median 7.0 ms over 3 restarts, backoff 0s | yes |",
		"40.0 MB for 200: 0.200 MB per container | yes |",
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
