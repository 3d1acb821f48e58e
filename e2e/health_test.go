package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/stack-containers/stack/internal/imagetest"
)

// eventIndex is the position of the first line of the output that has
// container name's event (`NAME * EVENT`) containing text, or -1.
func eventIndex(lines []string, name, text string) int {
	return slices.IndexFunc(lines, func(l string) bool {
		n, ev, ok := strings.Cut(l, " * ")
		return ok && strings.TrimSpace(n) == name && strings.Contains(ev, text)
	})
}

func (e *env) logLines() []string {
	e.t.Helper()
	return strings.Split(strings.TrimSuffix(e.MustRun("logs").Stdout, "\n"), "\n")
}

const readyServer = `
  server:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "sleep 2; touch /tmp/ready; exec sleep 1000"]
    healthcheck:
      test: ["CMD-SHELL", "test -f /tmp/ready"]
      interval: 200ms
      start_period: 30s
      start_interval: 200ms
`

func TestHealthyDependencyStartsFirst(t *testing.T) {
	e := newEnv(t)
	e.manifest(`
name: health
containers:` + readyServer + `
  client:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "echo client started; exec sleep 1000"]
    depends_on:
      server: {condition: service_healthy}
`)
	e.MustRun("up", "-d")
	t.Cleanup(func() { e.Run("down") })
	ps := e.PS()
	if ps["server"].Health != "healthy" || ps["client"].State != "running" || ps["client"].Health != "" {
		t.Errorf("ps after up -d: server %+v, client %+v", ps["server"], ps["client"])
	}
	lines := e.logLines()
	healthy, started := eventIndex(lines, "server", "healthy"), eventIndex(lines, "client", "started")
	if healthy < 0 || started < 0 || started < healthy {
		t.Errorf("client must start after server is healthy:\n%s", strings.Join(lines, "\n"))
	}
	table := e.MustRun("ps").Stdout
	if !strings.Contains(table, "(healthy)") {
		t.Errorf("ps table shows no health:\n%s", table)
	}
	e.DownLeavingNothing()
}

func TestUpWaitReturnsOnceHealthy(t *testing.T) {
	e := newEnv(t)
	e.manifest(`
name: wait
containers:` + readyServer + `
  plain:
    rootfs: {{rootfs}}
    command: sleep 1000
`)
	r := e.Run("up", "--wait")
	t.Cleanup(func() { e.Run("down") })
	if r.Code != 0 {
		t.Fatalf("up --wait: exit %d: %s", r.Code, r.Stderr)
	}
	// Read after up --wait returned: nothing may still be starting.
	ps := e.PS()
	if ps["server"].Health != "healthy" || ps["plain"].State != "running" {
		t.Errorf("ps after up --wait: %+v", ps)
	}
	e.DownLeavingNothing()
}

const neverHealthy = `
  server:
    rootfs: {{rootfs}}
    command: sleep 1000
    healthcheck:
      test: ["CMD-SHELL", "echo not ready yet; exit 1"]
      interval: 100ms
      retries: 2
`

func TestNeverHealthyFailsWaitAndDependants(t *testing.T) {
	e := newEnv(t)
	e.manifest("name: never\ncontainers:" + neverHealthy)
	r := e.Run("up", "--wait")
	if r.Code != 1 || !strings.Contains(r.Stderr, `container "server" is unhealthy: not ready yet`) {
		t.Errorf("up --wait of a check that never passes: exit %d, stderr %q", r.Code, r.Stderr)
	}
	// Left up, as Compose leaves it.
	if row := e.PS()["server"]; row.State != "running" || row.Health != "unhealthy" {
		t.Errorf("after up --wait failed: %+v, want running and unhealthy", row)
	}
	if lines := e.logLines(); eventIndex(lines, "server", "unhealthy: not ready yet") < 0 {
		t.Errorf("no unhealthy event with the check's output:\n%s", strings.Join(lines, "\n"))
	}
	e.DownLeavingNothing()

	e.manifest("name: never\ncontainers:" + neverHealthy + `
  client:
    rootfs: {{rootfs}}
    command: sleep 1000
    depends_on:
      server: {condition: service_healthy}
`)
	r = e.Run("up", "-d")
	if r.Code != 1 || !strings.Contains(r.Stderr, `container "client": depends on "server" (service_healthy)`) || !strings.Contains(r.Stderr, "unhealthy") {
		t.Errorf("up -d of a dependant of a check that never passes: exit %d, stderr %q", r.Code, r.Stderr)
	}
	e.AssertNothingLeft()
}

func TestCompletedSuccessfully(t *testing.T) {
	e := newEnv(t)
	job := func(code int) string {
		return fmt.Sprintf(`
name: jobs
containers:
  migrate:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "sleep 1; echo migrated; exit %d"]
  app:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "echo app started; exec sleep 1000"]
    depends_on:
      migrate: {condition: service_completed_successfully}
`, code)
	}
	e.manifest(job(0))
	r := e.Run("up", "--wait")
	if r.Code != 0 {
		t.Fatalf("up --wait with a migration job: exit %d: %s", r.Code, r.Stderr)
	}
	lines := e.logLines()
	exited, started := eventIndex(lines, "migrate", "exited with status 0"), eventIndex(lines, "app", "started")
	if exited < 0 || started < exited {
		t.Errorf("app must start after migrate exited 0:\n%s", strings.Join(lines, "\n"))
	}
	e.MustRun("down")

	e.manifest(job(3))
	r = e.Run("up", "-d")
	if r.Code != 1 || !strings.Contains(r.Stderr, `container "app": depends on "migrate" (service_completed_successfully)`) || !strings.Contains(r.Stderr, "exited with status 3") {
		t.Errorf("up -d after a failed migration: exit %d, stderr %q", r.Code, r.Stderr)
	}
	e.AssertNothingLeft()
}

// checkProcesses lists the processes of the container's cgroup whose
// command line is the check's.
func (e *env) checkProcesses(stack, container, cmdline string) []int {
	b, _ := os.ReadFile(filepath.Join(e.cgroupDir(e.t), e.CgroupParent, stack, container, "cgroup.procs"))
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, _ := strconv.Atoi(f)
		cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.ReplaceAll(string(cl), "\x00", " ") == cmdline {
			pids = append(pids, pid)
		}
	}
	return pids
}

func TestHangingCheckIsKilledAtItsTimeout(t *testing.T) {
	e := newEnv(t)
	e.manifest(`
name: hang
containers:
  c:
    rootfs: {{rootfs}}
    command: sleep 1000
    healthcheck:
      test: [CMD, sleep, "999"]
      interval: 100ms
      timeout: 500ms
      retries: 1
`)
	e.MustRun("up", "-d")
	t.Cleanup(func() { e.Run("down") })
	e.WaitFor("c unhealthy", func() bool { return e.PS()["c"].Health == "unhealthy" })
	var rows []map[string]any
	if err := json.Unmarshal([]byte(e.MustRun("ps", "--format", "json").Stdout), &rows); err != nil || len(rows) != 1 {
		t.Fatalf("ps --format json: %v", err)
	}
	if out := rows[0]["health_output"]; out != "check timed out after 500ms" {
		t.Errorf("health_output %q, want the timeout", out)
	}
	// Each check is killed at its timeout: there is never more than the
	// one under way.
	for range 5 {
		time.Sleep(300 * time.Millisecond)
		if pids := e.checkProcesses("hang", "c", "sleep 999 "); len(pids) > 1 {
			t.Fatalf("%d checks running at once (%v): the ones timed out were not killed", len(pids), pids)
		}
	}
	e.DownLeavingNothing()
}

func TestDownDuringCheck(t *testing.T) {
	e := newEnv(t)
	// A check that would take an hour, and a grace period as long: down
	// must neither wait for the check nor let it hold up the stop.
	e.manifest(`
name: downcheck
containers:
  c:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
    stop_timeout: 1h
    healthcheck:
      test: [CMD, sleep, "3600"]
      interval: 100ms
      timeout: 1h
`)
	e.MustRun("up", "-d")
	e.WaitFor("a check under way", func() bool { return len(e.checkProcesses("downcheck", "c", "sleep 3600 ")) == 1 })
	r := e.Run("down")
	if r.Code != 0 {
		t.Fatalf("down during a check: exit %d: %s", r.Code, r.Stderr)
	}
	t.Logf("down during a check took %v", r.Took)
	e.AssertNothingLeft()
}

func TestRestartingDependencyLeavesDependantsAlone(t *testing.T) {
	e := newEnv(t)
	e.manifest(`
name: restarts
containers:
  db:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "sleep 0.3; exit 1"]
    restart: {policy: on-failure, backoff: 100ms}
  app:
    rootfs: {{rootfs}}
    command: sleep 1000
    depends_on: [db]
`)
	e.MustRun("up", "-d")
	t.Cleanup(func() { e.Run("down") })
	e.WaitFor("db to restart twice", func() bool { return e.PS()["db"].Restarts >= 2 })
	if app := e.PS()["app"]; app.Restarts != 0 || app.State != "running" {
		t.Errorf("app after db restarted: %+v, want running and never restarted", app)
	}
	e.DownLeavingNothing()
}

func TestUpWaitFailsOnExitAndTimeout(t *testing.T) {
	e := newEnv(t)
	e.manifest(`
name: waitfail
containers:
  quits:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "sleep 0.5; exit 2"]
    # Not healthy before it exits, so that up --wait is still waiting.
    healthcheck: {test: ["CMD", "false"], start_period: 1h, start_interval: 100ms}
  stays:
    rootfs: {{rootfs}}
    command: sleep 1000
`)
	r := e.Run("up", "--wait")
	if r.Code != 1 || !strings.Contains(r.Stderr, `container "quits" exited with status 2`) || !strings.Contains(r.Stderr, "hint: the stack is left up") {
		t.Errorf("up --wait with a container that exits: exit %d, stderr %q\n%s", r.Code, r.Stderr, e.MustRun("logs").Stdout)
	}
	if row := e.PS()["stays"]; row.State != "running" {
		t.Errorf("the stack must be left up: stays is %+v", row)
	}
	e.MustRun("down")

	// Never healthy, never unhealthy either (its start period outlasts
	// the wait): only the timeout ends the wait.
	e.manifest(`
name: waitfail
containers:
  slow:
    rootfs: {{rootfs}}
    command: sleep 1000
    healthcheck:
      test: ["CMD", "false"]
      interval: 100ms
      start_period: 1h
      start_interval: 100ms
`)
	r = e.Run("up", "--wait", "--wait-timeout", "2s")
	if r.Code != 1 || !strings.Contains(r.Stderr, `timed out waiting for "slow" to be running and healthy`) {
		t.Errorf("up --wait --wait-timeout 2s: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if row := e.PS()["slow"]; row.State != "running" || row.Health != "starting" {
		t.Errorf("after the timeout: %+v, want running and starting", row)
	}
	e.DownLeavingNothing()
	if r := e.Run("up", "--wait-timeout", "1s"); r.Code != 2 {
		t.Errorf("--wait-timeout without --wait: exit %d, want 2", r.Code)
	}
}

// TestImageHealthcheckIsTheDefault runs an image whose config has a
// HEALTHCHECK: it is the container's check unless the manifest's test is
// [NONE], and a dependant may wait for it.
func TestImageHealthcheckIsTheDefault(t *testing.T) {
	e := newEnv(t)
	app := imagetest.App(t)
	cf, err := app.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config.Healthcheck = &v1.HealthConfig{Test: []string{"CMD-SHELL", "test -f /app/hello.txt"}, Interval: 200 * time.Millisecond}
	app, err = mutate.ConfigFile(app, cf)
	if err != nil {
		t.Fatal(err)
	}
	imagetest.WriteOCILayout(t, filepath.Join(e.Dir, "layout"), "v1", app)
	e.manifest(`
name: imagehealth
containers:
  server:
    image: oci:layout:v1
    entrypoint: [sleep]
    command: ["1000"]
  unchecked:
    image: oci:layout:v1
    entrypoint: [sleep]
    command: ["1000"]
    healthcheck: {test: [NONE]}
  client:
    rootfs: {{rootfs}}
    command: sleep 1000
    depends_on:
      server: {condition: service_healthy}
`)
	r := e.Run("up", "--wait")
	t.Cleanup(func() { e.Run("down") })
	if r.Code != 0 {
		t.Fatalf("up --wait: exit %d: %s", r.Code, r.Stderr)
	}
	ps := e.PS()
	if ps["server"].Health != "healthy" || ps["unchecked"].Health != "" || ps["client"].State != "running" {
		t.Errorf("ps: %+v", ps)
	}
	lines := e.logLines()
	if healthy, started := eventIndex(lines, "server", "healthy"), eventIndex(lines, "client", "started"); healthy < 0 || started < healthy {
		t.Errorf("client must start after server is healthy:\n%s", strings.Join(lines, "\n"))
	}
	e.MustRun("down")

	// The image's check disabled, nothing can make the container healthy.
	e.manifest(`
name: imagehealth
containers:
  server:
    image: oci:layout:v1
    entrypoint: [sleep]
    command: ["1000"]
    healthcheck: {test: [NONE]}
  client:
    rootfs: {{rootfs}}
    command: sleep 1000
    depends_on:
      server: {condition: service_healthy}
`)
	r = e.Run("up", "-d")
	if r.Code != 2 || !strings.Contains(r.Stderr, `"server" has no healthcheck`) {
		t.Errorf("service_healthy on a check disabled in the manifest: exit %d, stderr %q", r.Code, r.Stderr)
	}

	// An image without a HEALTHCHECK: known only once it is pulled.
	imagetest.WriteOCILayout(t, filepath.Join(e.Dir, "other"), "v1", imagetest.Other(t))
	e.manifest(`
name: imagehealth
containers:
  server:
    image: oci:other:v1
    entrypoint: [sleep]
    command: ["1000"]
  client:
    rootfs: {{rootfs}}
    command: sleep 1000
    depends_on:
      server: {condition: service_healthy}
`)
	r = e.Run("up", "-d")
	if r.Code != 1 || !strings.Contains(r.Stderr, `container "client": depends on "server" (service_healthy)`) || !strings.Contains(r.Stderr, "it has no healthcheck") {
		t.Errorf("service_healthy on an image without a check: exit %d, stderr %q", r.Code, r.Stderr)
	}
	e.AssertNothingLeft()
}
