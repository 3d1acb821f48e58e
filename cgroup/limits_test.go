package cgroup

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Create leaves out the writes of values a new cgroup already has. These
// tests read every limit file back from the real hierarchies: a new cgroup
// must end up as if every limit had been written, and an existing one,
// left with other values by an earlier run, must be set in full.

// limitFile is one limit file of a cgroup, where the driver keeps it.
type limitFile struct {
	ctrl, name string
}

// wantLimits is what the limit files of a cgroup with r must read, per
// driver version; a file the host lacks (no swap accounting, a controller
// not enabled) is skipped.
func wantLimits(v int, r Resources) map[limitFile]string {
	num := func(n int64, none string) string {
		if n > 0 {
			return strconv.FormatInt(n, 10)
		}
		return none
	}
	if v == 1 {
		// "-1" in a v1 memory file reads back as the largest page
		// multiple; unlimitedV1 stands for it.
		return map[limitFile]string{
			{"memory", "memory.limit_in_bytes"}:       num(r.Memory, unlimitedV1),
			{"memory", "memory.memsw.limit_in_bytes"}: num(r.Memory, unlimitedV1),
			{"cpu", "cpu.cfs_period_us"}:              "100000",
			{"cpu", "cpu.cfs_quota_us"}:               cfsQuota(r.CPUs, "-1"),
			{"pids", "pids.max"}:                      num(r.Pids, "max"),
		}
	}
	swap := "max"
	if r.Memory > 0 {
		swap = "0"
	}
	return map[limitFile]string{
		{"memory", "memory.max"}:       num(r.Memory, "max"),
		{"memory", "memory.swap.max"}:  swap,
		{"memory", "memory.oom.group"}: "1",
		{"cpu", "cpu.max"}:             cfsQuota(r.CPUs, "max") + " 100000",
		{"pids", "pids.max"}:           num(r.Pids, "max"),
	}
}

// unlimitedV1 marks a v1 memory limit of none in wantLimits.
const unlimitedV1 = "unlimited"

// limitDir is the directory of path's files of controller ctrl.
func limitDir(h Host, v int, ctrl, path string) string {
	if v == 1 {
		return filepath.Join(h.V1[ctrl], path)
	}
	return filepath.Join(h.V2, path)
}

// checkLimits fails the test for each limit file of path that does not read
// as a cgroup with r should.
func checkLimits(t *testing.T, h Host, rd realDriver, path string, r Resources) {
	t.Helper()
	v := rd.d.Version()
	for f, want := range wantLimits(v, r) {
		if v == 1 && h.V1[f.ctrl] == "" {
			continue
		}
		file := filepath.Join(limitDir(h, v, f.ctrl, path), f.name)
		b, err := os.ReadFile(file)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got := strings.TrimSpace(string(b))
		if want == unlimitedV1 {
			if n, err := strconv.ParseInt(got, 10, 64); err == nil && n >= unlimited {
				continue
			}
		}
		if got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
}

// someLimits is a limit on every controller rd can limit with.
func someLimits(rd realDriver) Resources {
	var r Resources
	if rd.limits["memory"] {
		r.Memory = 48 << 20
	}
	if rd.limits["cpu"] {
		r.CPUs = 0.5
	}
	if rd.limits["pids"] {
		r.Pids = 32
	}
	return r
}

// TestCreateFreshLimits: a cgroup Create makes reads, with no limits and
// with some, as if every limit file had been written; its parent's limits,
// a CFS period among them, are not what a new cgroup starts from.
func TestCreateFreshLimits(t *testing.T) {
	eachDriver(t, "", func(t *testing.T, h Host, rd realDriver, parent string) {
		some := someLimits(rd)
		if _, err := rd.d.Create(parent, some); err != nil {
			t.Fatal(err)
		}
		if rd.d.Version() == 1 && h.V1["cpu"] != "" {
			// The quota fits a shorter period too.
			if err := writeFile(filepath.Join(h.V1["cpu"], parent, "cpu.cfs_period_us"), "60000"); err != nil {
				t.Fatal(err)
			}
		}
		for name, r := range map[string]Resources{"none": {}, "some": some} {
			path := parent + "/" + name
			if _, err := rd.d.Create(path, r); err != nil {
				t.Fatalf("Create %s: %v", path, err)
			}
			checkLimits(t, h, rd, path, r)
		}
	})
}

// TestCreateExistingResets: Create on a cgroup that is already there (an
// earlier run's, with other limits and a CFS period not the kernel's) sets
// every limit, back to none where r has none.
func TestCreateExistingResets(t *testing.T) {
	eachDriver(t, "", func(t *testing.T, h Host, rd realDriver, parent string) {
		path := parent + "/stale"
		some := someLimits(rd)
		if _, err := rd.d.Create(path, some); err != nil {
			t.Fatal(err)
		}
		cpuDir := limitDir(h, rd.d.Version(), "cpu", path)
		switch {
		case rd.d.Version() == 1 && h.V1["cpu"] != "":
			if err := writeFile(filepath.Join(cpuDir, "cpu.cfs_period_us"), "60000"); err != nil {
				t.Fatal(err)
			}
		case rd.d.Version() == 2 && rd.limits["cpu"]:
			if err := writeFile(filepath.Join(cpuDir, "cpu.max"), "20000 60000"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := rd.d.Create(path, Resources{}); err != nil {
			t.Fatal(err)
		}
		checkLimits(t, h, rd, path, Resources{})
		other := Resources{Memory: some.Memory * 2, CPUs: some.CPUs * 2, Pids: some.Pids * 2}
		if _, err := rd.d.Create(path, other); err != nil {
			t.Fatal(err)
		}
		checkLimits(t, h, rd, path, other)
	})
}
