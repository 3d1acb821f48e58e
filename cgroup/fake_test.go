package cgroup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// These tests point the drivers at a fake cgroupfs: plain directories and
// files in t.TempDir(), laid out as the kernel would, so that they run
// anywhere and show exactly what gets written where. What only the kernel
// can do (rmdir of a directory with files, eventfd registration, limits
// that bite) is left to the real tests.

// fakeFiles creates dir with the given files, as the kernel populates a new
// cgroup directory.
func fakeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sample reads a file of testdata.
func sample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// wantFiles fails unless each file under dir holds the given content.
func wantFiles(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	for name, w := range want {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if string(b) != w {
			t.Errorf("%s = %q, want %q", filepath.Join(dir, name), b, w)
		}
	}
}

// The kernel's values for a fresh v1 cgroup, per controller.
const v1Unlimited = "9223372036854771712\n"

var v1Fresh = map[string]map[string]string{
	"memory": {
		"cgroup.procs": "", "memory.limit_in_bytes": v1Unlimited, "memory.memsw.limit_in_bytes": v1Unlimited,
		"memory.usage_in_bytes": "0\n", "memory.max_usage_in_bytes": "0\n", "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
	},
	"cpu":     {"cgroup.procs": "", "cpu.cfs_period_us": "100000\n", "cpu.cfs_quota_us": "-1\n"},
	"pids":    {"cgroup.procs": "", "pids.max": "max\n"},
	"freezer": {"cgroup.procs": "", "freezer.state": "THAWED\n"},
}

// fakeV1 makes a fake v1 host with the given controllers mounted, and the
// cgroup at path already populated as the kernel would on mkdir.
func fakeV1(t *testing.T, path string, ctrls ...string) (Driver, map[string]string) {
	t.Helper()
	root := t.TempDir()
	mounts := map[string]string{}
	for _, c := range ctrls {
		mounts[c] = filepath.Join(root, c)
		fakeFiles(t, filepath.Join(root, c, path), v1Fresh[c])
	}
	return NewV1(mounts), mounts
}

func TestV1CreateWritesLimits(t *testing.T) {
	d, m := fakeV1(t, "stack/demo/web", "memory", "cpu", "pids", "freezer")
	if _, err := d.Create("stack/demo/web", Resources{Memory: 64 << 20, CPUs: 1.5, Pids: 100}); err != nil {
		t.Fatal(err)
	}
	wantFiles(t, filepath.Join(m["memory"], "stack/demo/web"), map[string]string{
		"memory.limit_in_bytes": "67108864", "memory.memsw.limit_in_bytes": "67108864",
	})
	wantFiles(t, filepath.Join(m["cpu"], "stack/demo/web"), map[string]string{
		"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "150000",
	})
	wantFiles(t, filepath.Join(m["pids"], "stack/demo/web"), map[string]string{"pids.max": "100"})
	wantFiles(t, filepath.Join(m["freezer"], "stack/demo/web"), map[string]string{"freezer.state": "THAWED\n"})
}

func TestV1SetZeroClearsLimits(t *testing.T) {
	d, m := fakeV1(t, "x", "memory", "cpu", "pids")
	cg, err := d.Create("x", Resources{Memory: 1 << 20, CPUs: 1, Pids: 5})
	if err != nil {
		t.Fatal(err)
	}
	if err := cg.Set(Resources{}); err != nil {
		t.Fatal(err)
	}
	wantFiles(t, filepath.Join(m["memory"], "x"), map[string]string{"memory.limit_in_bytes": "-1", "memory.memsw.limit_in_bytes": "-1"})
	wantFiles(t, filepath.Join(m["cpu"], "x"), map[string]string{"cpu.cfs_quota_us": "-1"})
	wantFiles(t, filepath.Join(m["pids"], "x"), map[string]string{"pids.max": "max"})
}

func TestV1WithoutSwapAccounting(t *testing.T) {
	d, m := fakeV1(t, "x", "memory")
	if err := os.Remove(filepath.Join(m["memory"], "x", "memory.memsw.limit_in_bytes")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Create("x", Resources{Memory: 2000000}); err != nil {
		t.Fatal(err)
	}
	wantFiles(t, filepath.Join(m["memory"], "x"), map[string]string{"memory.limit_in_bytes": "2000000"})
	if exists(filepath.Join(m["memory"], "x", "memory.memsw.limit_in_bytes")) {
		t.Error("memsw limit written on a host without swap accounting")
	}
}

func TestV1MissingControllers(t *testing.T) {
	d, m := fakeV1(t, "x", "memory", "freezer")
	_, err := d.Create("x", Resources{Pids: 10})
	if err == nil || !strings.Contains(err.Error(), "pids controller") {
		t.Errorf("Create with a pids limit and no pids controller: %v, want an error naming it", err)
	}
	if _, err := d.Create("x", Resources{Memory: 1 << 20}); err != nil {
		t.Errorf("Create needing only mounted controllers: %v", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(m["memory"]), "pids")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a hierarchy that is not mounted was touched: %v", err)
	}
}

// TestV1AddProcOncePerHierarchy: cpu and cpuacct mounted together share a
// directory, which must be written once.
func TestV1AddProcOncePerHierarchy(t *testing.T) {
	d, m := fakeV1(t, "x", "memory", "cpu", "pids", "freezer")
	m["cpuacct"] = m["cpu"]
	cg := NewV1(m).Load("x")
	if err := cg.AddProc(4242); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"memory", "cpu", "pids", "freezer"} {
		wantFiles(t, filepath.Join(m[c], "x"), map[string]string{"cgroup.procs": "4242"})
	}
	if d.Version() != 1 {
		t.Errorf("Version() = %d", d.Version())
	}
}

func TestV1StatsFromSamples(t *testing.T) {
	_, m := fakeV1(t, "x", "memory")
	fakeFiles(t, filepath.Join(m["memory"], "x"), map[string]string{
		// Taken from this kind of host after a 20 MiB cgroup's OOM kill,
		// with 8 MiB of page cache and 3 MiB of anonymous memory in use.
		"memory.oom_control":        sample(t, "v1-memory.oom_control"),
		"memory.stat":               sample(t, "v1-memory.stat"),
		"memory.usage_in_bytes":     "9289728\n",
		"memory.max_usage_in_bytes": "20971520\n",
		"memory.limit_in_bytes":     "20971520\n",
		"cgroup.procs":              "17\n23\n",
	})
	cg := NewV1(m).Load("x")
	st, err := cg.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{MemoryUsage: 9289728 - 8388608, MemoryPeak: 20971520, MemoryLimit: 20971520, Pids: []int{17, 23}}
	if !statsEqual(st, want) {
		t.Errorf("Stats = %+v, want %+v", st, want)
	}
	if n, err := cg.OOMKills(); err != nil || n != 1 {
		t.Errorf("OOMKills = %d, %v; want 1", n, err)
	}
	fakeFiles(t, filepath.Join(m["memory"], "x"), map[string]string{"memory.limit_in_bytes": v1Unlimited})
	if st, err := cg.Stats(); err != nil || st.MemoryLimit != 0 {
		t.Errorf("Stats without a limit: MemoryLimit = %d, %v; want 0", st.MemoryLimit, err)
	}
}

func statsEqual(a, b Stats) bool {
	return a.MemoryUsage == b.MemoryUsage && a.MemoryPeak == b.MemoryPeak &&
		a.MemoryLimit == b.MemoryLimit && slices.Equal(a.Pids, b.Pids)
}

func TestWriteErrorNamesFileAndValue(t *testing.T) {
	d, m := fakeV1(t, "x", "memory")
	if err := os.Remove(filepath.Join(m["memory"], "x", "memory.limit_in_bytes")); err != nil {
		t.Fatal(err)
	}
	_, err := d.Create("x", Resources{Memory: 2000000})
	want := `cgroup: write "2000000" to ` + filepath.Join(m["memory"], "x", "memory.limit_in_bytes") + `: no such file or directory`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant    %s", err, want)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v does not wrap the errno", err)
	}
}

// TestInvalidPaths: no path may reach a hierarchy's root or leave it, so
// that a bad name can never kill or remove everything.
func TestInvalidPaths(t *testing.T) {
	d1, _ := fakeV1(t, "x", "memory", "freezer")
	d2 := NewV2(t.TempDir())
	for _, d := range []Driver{d1, d2} {
		for _, p := range []string{"", ".", "/", "/abs", "..", "../x", "a/../.."} {
			if _, err := d.Create(p, Resources{}); err == nil {
				t.Errorf("v%d Create(%q) succeeded", d.Version(), p)
			}
			cg := d.Load(p)
			if err := cg.Destroy(); err == nil {
				t.Errorf("v%d Load(%q).Destroy() succeeded", d.Version(), p)
			}
			if err := cg.Kill(); err == nil {
				t.Errorf("v%d Load(%q).Kill() succeeded", d.Version(), p)
			}
		}
		if got := d.Load("a//b/").Path(); got != "a/b" {
			t.Errorf("v%d Load(%q).Path() = %q, want a/b", d.Version(), "a//b/", got)
		}
	}
}

func TestDestroyFake(t *testing.T) {
	root := t.TempDir()
	for _, dir := range []string{"p/a/b", "p/a/c", "p/d"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d := NewV2(root)
	if err := d.Load("p").Destroy(); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(root, "p")) {
		t.Error("p survives Destroy")
	}
	if err := d.Load("p").Destroy(); err != nil {
		t.Errorf("Destroy of a missing cgroup: %v", err)
	}
	// A directory rmdir refuses for another reason than EBUSY fails at
	// once, naming it.
	fakeFiles(t, filepath.Join(root, "q"), map[string]string{"stray": ""})
	err := d.Load("q").Destroy()
	if err == nil || !strings.Contains(err.Error(), filepath.Join(root, "q")) {
		t.Errorf("Destroy of a non-empty directory: %v, want an error naming it", err)
	}
}

// fakeV2 makes a fake cgroup2 root offering ctrls, with the cgroup at path
// populated as the kernel would with ctrls enabled for it.
func fakeV2(t *testing.T, path string, ctrls string, enabled string) (Driver, string) {
	t.Helper()
	root := t.TempDir()
	fakeFiles(t, root, map[string]string{"cgroup.controllers": ctrls + "\n", "cgroup.subtree_control": enabled + "\n"})
	dir := root
	for _, elem := range strings.Split(path, "/") {
		dir = filepath.Join(dir, elem)
		fakeFiles(t, dir, map[string]string{
			"cgroup.controllers": ctrls + "\n", "cgroup.subtree_control": "\n", "cgroup.procs": "",
			"cgroup.events": "populated 0\nfrozen 0\n", "cgroup.kill": "", "cgroup.freeze": "0\n",
		})
	}
	for _, c := range strings.Fields(ctrls) {
		switch c {
		case "memory":
			fakeFiles(t, dir, map[string]string{
				"memory.max": "max\n", "memory.swap.max": "max\n", "memory.oom.group": "0\n",
				"memory.current": "0\n", "memory.peak": "0\n", "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
				"memory.stat": "anon 0\nfile 0\ninactive_file 0\n",
			})
		case "cpu":
			fakeFiles(t, dir, map[string]string{"cpu.max": "max 100000\n"})
		case "pids":
			fakeFiles(t, dir, map[string]string{"pids.max": "max\n"})
		}
	}
	return NewV2(root), root
}

func TestV2EnablesControllersDownTheChain(t *testing.T) {
	d, root := fakeV2(t, "stack/demo/web", "cpuset cpu io memory pids", "memory")
	if _, err := d.Create("stack/demo/web", Resources{Memory: 64 << 20, CPUs: 0.5}); err != nil {
		t.Fatal(err)
	}
	// memory was already enabled at the root; pids is not needed.
	wantFiles(t, root, map[string]string{"cgroup.subtree_control": "+cpu"})
	wantFiles(t, filepath.Join(root, "stack"), map[string]string{"cgroup.subtree_control": "+memory +cpu"})
	wantFiles(t, filepath.Join(root, "stack/demo"), map[string]string{"cgroup.subtree_control": "+memory +cpu"})
	wantFiles(t, filepath.Join(root, "stack/demo/web"), map[string]string{
		"cgroup.subtree_control": "\n",
		"memory.max":             "67108864", "memory.swap.max": "0", "memory.oom.group": "1",
		"cpu.max": "50000 100000", "pids.max": "max",
	})
}

func TestV2MissingControllers(t *testing.T) {
	// This host's /sys/fs/cgroup/unified: a cgroup2 hierarchy offering none.
	d, root := fakeV2(t, "x", "", "")
	_, err := d.Create("x", Resources{Memory: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), "memory controller") {
		t.Errorf("Create with a memory limit and no memory controller: %v, want an error naming it", err)
	}
	cg, err := d.Create("x", Resources{})
	if err != nil {
		t.Fatalf("Create without limits on a controller-less hierarchy: %v", err)
	}
	wantFiles(t, root, map[string]string{"cgroup.subtree_control": "\n"})
	if n, err := cg.OOMKills(); err != nil || n != 0 {
		t.Errorf("OOMKills without a memory controller = %d, %v; want 0", n, err)
	}
	if st, err := cg.Stats(); err != nil || !statsEqual(st, Stats{}) {
		t.Errorf("Stats without a memory controller = %+v, %v; want zeros", st, err)
	}
}

func TestV2StatsFromSamples(t *testing.T) {
	d, root := fakeV2(t, "x", "memory pids", "memory pids")
	dir := filepath.Join(root, "x")
	fakeFiles(t, dir, map[string]string{
		"memory.events": sample(t, "v2-memory.events"), "memory.stat": sample(t, "v2-memory.stat"),
		"cgroup.events":  sample(t, "v2-cgroup.events"),
		"memory.current": "9289728\n", "memory.peak": "20971520\n", "memory.max": "20971520\n",
		"cgroup.procs": "31\n",
	})
	fakeFiles(t, filepath.Join(dir, "child"), map[string]string{"cgroup.procs": "7\n"})
	cg := d.Load("x")
	st, err := cg.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{MemoryUsage: 9289728 - 8388608, MemoryPeak: 20971520, MemoryLimit: 20971520, Pids: []int{7, 31}}
	if !statsEqual(st, want) {
		t.Errorf("Stats = %+v, want %+v", st, want)
	}
	// The sample says oom 3 and oom_kill 2: only kills count.
	if n, err := cg.OOMKills(); err != nil || n != 2 {
		t.Errorf("OOMKills = %d, %v; want 2", n, err)
	}
}

// TestV2OOMKillsWithGroupKill: with memory.oom.group on, the kernel counts
// every process of the group in oom_kill (the victim twice), so one OOM kill
// of a one-process container reads oom_kill 2, oom_group_kill 1.
func TestV2OOMKillsWithGroupKill(t *testing.T) {
	for _, tc := range []struct {
		name, group, events string
		want                uint64
	}{
		{"group on", "1\n", "oom 1\noom_kill 2\noom_group_kill 1\n", 1},
		{"group off", "0\n", "oom 2\noom_kill 2\noom_group_kill 0\n", 2},
		{"kernel without oom_group_kill", "1\n", "oom 2\noom_kill 2\n", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, root := fakeV2(t, "x", "memory", "memory")
			fakeFiles(t, filepath.Join(root, "x"), map[string]string{"memory.oom.group": tc.group, "memory.events": tc.events})
			if n, err := d.Load("x").OOMKills(); err != nil || n != tc.want {
				t.Errorf("OOMKills with oom.group %q and memory.events %q = %d, %v; want %d", tc.group, tc.events, n, err, tc.want)
			}
		})
	}
}

// TestV2OOMEventsWithGroupKill: one group kill is one event, however many
// processes it took.
func TestV2OOMEventsWithGroupKill(t *testing.T) {
	d, root := fakeV2(t, "x", "memory", "memory")
	dir := filepath.Join(root, "x")
	fakeFiles(t, dir, map[string]string{"memory.oom.group": "1\n", "memory.events": "oom 0\noom_kill 0\noom_group_kill 0\n"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := d.Load("x").OOMEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fakeFiles(t, dir, map[string]string{"memory.events": "oom 1\noom_kill 3\noom_group_kill 1\n"})
	got := 0
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatal("channel closed without an event")
		}
		got++
	case <-time.After(10 * time.Second):
		t.Fatal("no event in 10s for oom_group_kill 0 -> 1")
	}
	// Whatever else the watcher sent for that one change is buffered.
	cancel()
	for range ch {
		got++
	}
	if got != 1 {
		t.Errorf("one group OOM kill of 2 processes sent %d events, want 1", got)
	}
}

func TestV2KillForRemovalWritesCgroupKill(t *testing.T) {
	d, root := fakeV2(t, "x", "", "")
	dir := filepath.Join(root, "x")
	events := filepath.Join(dir, "cgroup.events")
	if err := os.WriteFile(events, []byte("populated 1\nfrozen 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	killed := make(chan error, 1)
	go func() { killed <- d.Load("x").(*v2Cgroup).killForRemoval() }()
	// It waits for the cgroup to empty after its write: the fake's
	// processes "die" once cgroup.kill says 1.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if b, _ := os.ReadFile(filepath.Join(dir, "cgroup.kill")); string(b) == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("killForRemoval of a populated cgroup never wrote cgroup.kill")
		}
	}
	if err := os.WriteFile(events, []byte("populated 0\nfrozen 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := <-killed; err != nil {
		t.Fatal(err)
	}
}

// TestV2KillNeverWritesCgroupKill kills a populated cgroup that a
// restart will use again: by signals, never through cgroup.kill (see
// v2Cgroup.Kill). The fake lists no process, so there is none to signal.
func TestV2KillNeverWritesCgroupKill(t *testing.T) {
	d, root := fakeV2(t, "x", "", "")
	dir := filepath.Join(root, "x")
	if err := os.WriteFile(filepath.Join(dir, "cgroup.events"), []byte("populated 1\nfrozen 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Load("x").Kill(); err != nil {
		t.Fatal(err)
	}
	wantFiles(t, dir, map[string]string{"cgroup.kill": ""})
}

func TestV2KillLeavesAnEmptyCgroupAlone(t *testing.T) {
	d, root := fakeV2(t, "x", "", "")
	if err := d.Load("x").Kill(); err != nil {
		t.Fatal(err)
	}
	// No write at all, not even the freezer's: an empty cgroup needs no
	// kill.
	wantFiles(t, filepath.Join(root, "x"), map[string]string{"cgroup.kill": ""})
}

// TestV2OOMEventsFake drives the inotify watcher through a fake
// memory.events and cgroup.events: inotify works on any filesystem.
func TestV2OOMEventsFake(t *testing.T) {
	d, root := fakeV2(t, "x", "memory", "memory")
	dir := filepath.Join(root, "x")
	events := func(oomKill string) map[string]string {
		return map[string]string{"memory.events": "low 0\nhigh 0\nmax 9\noom 5\noom_kill " + oomKill + "\n"}
	}
	fakeFiles(t, dir, events("1"))
	ch, err := d.Load("x").OOMEvents(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fakeFiles(t, dir, map[string]string{"cgroup.events": "populated 1\nfrozen 0\n"})
	fakeFiles(t, dir, events("3"))
	for i := range 2 {
		select {
		case _, ok := <-ch:
			if !ok {
				t.Fatalf("channel closed after %d events, want 2", i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("got %d events in 10s, want 2 (oom_kill 1 -> 3)", i)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ch, "the cgroup was removed")
}

// TestV2OOMEventsOutliveEmptiness: the watch goes on when the cgroup
// empties (between two runs, or at a late notice of an earlier process
// leaving, which kernfs may deliver after the watch began).
func TestV2OOMEventsOutliveEmptiness(t *testing.T) {
	d, root := fakeV2(t, "x", "memory", "memory")
	dir := filepath.Join(root, "x")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := d.Load("x").OOMEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fakeFiles(t, dir, map[string]string{"cgroup.events": "populated 1\nfrozen 0\n"})
	fakeFiles(t, dir, map[string]string{"cgroup.events": "populated 0\nfrozen 0\n"})
	// Time for the watcher to read that notice, where it reads it.
	time.Sleep(100 * time.Millisecond)
	fakeFiles(t, dir, map[string]string{"memory.events": "oom 1\noom_kill 1\n"})
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatal("the watch ended when the cgroup emptied")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event in 10s for oom_kill 0 -> 1")
	}
	cancel()
	waitClosed(t, ch, "its context ended")
}

func TestV2OOMEventsEndWithContextAndRemoval(t *testing.T) {
	d, root := fakeV2(t, "x", "memory", "memory")
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := d.Load("x").OOMEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	waitClosed(t, ch, "its context ended")

	ch, err = d.Load("x").OOMEvents(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(root, "x")); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ch, "the cgroup was removed")
}

func TestParseKeyedRejectsGarbage(t *testing.T) {
	for _, in := range []string{"oom_kill\n", "oom_kill x\n", "oom_kill -1\n"} {
		if _, err := parseKeyed("memory.events", []byte(in)); err == nil {
			t.Errorf("parseKeyed(%q) succeeded", in)
		}
	}
	m, err := parseKeyed("cgroup.events", []byte(sample(t, "v2-cgroup.events")))
	if err != nil || m["populated"] != 1 || m["frozen"] != 0 || len(m) != 2 {
		t.Errorf("parse cgroup.events sample = %v, %v", m, err)
	}
}

func TestParseMountinfo(t *testing.T) {
	tests := []struct {
		file string
		mode Mode
		v1   map[string]string
		v2   string
	}{
		{"mountinfo-hybrid", Hybrid, map[string]string{
			"cpu": "/sys/fs/cgroup/cpu", "cpuacct": "/sys/fs/cgroup/cpuacct", "cpuset": "/sys/fs/cgroup/cpuset",
			"memory": "/sys/fs/cgroup/memory", "devices": "/sys/fs/cgroup/devices", "freezer": "/sys/fs/cgroup/freezer",
			"blkio": "/sys/fs/cgroup/blkio", "pids": "/sys/fs/cgroup/pids",
		}, "/sys/fs/cgroup/unified"},
		// Controllers mounted together share a mount point; the first
		// mount of a controller wins over a later one (the escaped
		// /mnt/my\040cgroups).
		{"mountinfo-legacy", Legacy, map[string]string{
			"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
			"memory": "/sys/fs/cgroup/memory", "pids": "/sys/fs/cgroup/pids", "freezer": "/sys/fs/cgroup/freezer",
			"net_cls": "/sys/fs/cgroup/net_cls,net_prio", "net_prio": "/sys/fs/cgroup/net_cls,net_prio",
		}, ""},
		{"mountinfo-unified", Unified, map[string]string{}, "/sys/fs/cgroup"},
	}
	for _, tt := range tests {
		f, err := os.Open(filepath.Join("testdata", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		h, err := parseMountinfo(f)
		f.Close()
		if err != nil {
			t.Errorf("%s: %v", tt.file, err)
			continue
		}
		if h.Mode != tt.mode || h.V2 != tt.v2 || !mapsEqual(h.V1, tt.v1) {
			t.Errorf("%s: got %v, want mode %v v1 %v v2 %q", tt.file, h, tt.mode, tt.v1, tt.v2)
		}
	}
	if _, err := parseMountinfo(strings.NewReader("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n")); err == nil {
		t.Error("a host without cgroup mounts parsed without error")
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestHostDriverAndString(t *testing.T) {
	h := Host{Mode: Hybrid, V1: map[string]string{"memory": "/m", "cpu": "/c"}, V2: "/u"}
	if got, want := h.String(), "hybrid (v1: cpu=/c memory=/m; v2: /u)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if v := h.Driver().Version(); v != 1 {
		t.Errorf("hybrid host driver is v%d, want v1", v)
	}
	if v := (Host{Mode: Unified, V2: "/sys/fs/cgroup"}).Driver().Version(); v != 2 {
		t.Errorf("unified host driver is v%d, want v2", v)
	}
}
