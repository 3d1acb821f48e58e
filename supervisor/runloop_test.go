package supervisor

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stack-containers/stack/cgroup"
	"github.com/stack-containers/stack/manifest"
	"github.com/stack-containers/stack/supervisor/logs"
)

// oomCgroup is a cgroup whose accounting says it is at its limit; reportOOM
// needs nothing else of it.
type oomCgroup struct{ cgroup.Cgroup }

func (oomCgroup) Stats() (cgroup.Stats, error) {
	return cgroup.Stats{MemoryPeak: 2000000, MemoryLimit: 2000000}, nil
}

// On cgroup v1 one OOM may kill two processes of a run (the shell and the
// child filling its pipe): the container's count is of runs struck, one
// each, as with v2's group kill.
func TestOOMKillsCountRunsNotProcesses(t *testing.T) {
	dir := t.TempDir()
	agg, err := logs.New(logs.Config{Dirs: map[string]string{"mem": filepath.Join(dir, "mem")}, Names: []string{"mem"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agg.Close() })
	log, err := agg.Container("mem")
	if err != nil {
		t.Fatal(err)
	}
	s := &Supervisor{state: newStateWriter(Paths{Dir: dir}, State{Stack: "oom", Containers: []ContainerState{{Name: "mem"}}}, func(err error) { t.Error(err) })}
	t.Cleanup(s.state.close)
	c := &container{def: &manifest.Container{Name: "mem"}, cg: oomCgroup{}, log: log}
	kills := func() uint64 {
		s.state.mu.Lock()
		defer s.state.mu.Unlock()
		return s.state.state.Container("mem").OOMKills
	}

	first := &run{oomBefore: 0}
	second := &run{oomBefore: 2}
	for i, step := range []struct {
		r        *run
		count    uint64 // the cgroup's raw count
		reported bool
		kills    uint64
	}{
		{first, 0, false, 0},  // an OOM situation before the kill
		{first, 1, true, 1},   // the shell killed
		{first, 2, false, 1},  // its child, in the same OOM
		{second, 2, false, 1}, // the first run's kills, seen from the second
		{second, 3, true, 2},  // the second run's
		{second, 3, false, 2}, // its end, reporting the same again
	} {
		if got := s.reportOOM(c, step.r, step.count); got != step.reported || kills() != step.kills {
			t.Errorf("step %d: raw count %d: reported %v with %d kills, want %v with %d", i, step.count, got, kills(), step.reported, step.kills)
		}
	}
}

// slowStatsCgroup is a cgroup whose first Stats call closes inStats, then
// waits for release.
type slowStatsCgroup struct {
	cgroup.Cgroup
	first            sync.Once
	inStats, release chan struct{}
}

func (c *slowStatsCgroup) Stats() (cgroup.Stats, error) {
	c.first.Do(func() {
		close(c.inStats)
		<-c.release
	})
	return cgroup.Stats{MemoryPeak: 2 << 20, MemoryLimit: 2 << 20}, nil
}

// TestOOMEventBeforeTheRunsEnd: the watcher's report of a kill may still be
// reading the cgroup's figures when the run's end reports the same count;
// the kill's event must come first all the same.
func TestOOMEventBeforeTheRunsEnd(t *testing.T) {
	dir := t.TempDir()
	agg, err := logs.New(logs.Config{Dirs: map[string]string{"c0": dir}, Names: []string{"c0"}})
	if err != nil {
		t.Fatal(err)
	}
	log, err := agg.Container("c0")
	if err != nil {
		t.Fatal(err)
	}
	w := newTestStateWriter(t, 1)
	defer w.close()
	cg := &slowStatsCgroup{inStats: make(chan struct{}), release: make(chan struct{})}
	s := &Supervisor{state: w}
	c := &container{def: &manifest.Container{Name: "c0"}, cg: cg, log: log}

	r := &run{}
	watcher := make(chan bool)
	go func() { watcher <- s.reportOOM(c, r, 1) }()
	<-cg.inStats
	// What waitRun does once the run's PID 1 is gone.
	ended := make(chan struct{})
	go func() {
		s.reportOOM(c, r, 1)
		log.Event("exited with status 137 (killed by SIGKILL), OOM-killed")
		close(ended)
	}()
	// Time for the run's end to overtake the watcher, where it can.
	select {
	case <-ended:
	case <-time.After(200 * time.Millisecond):
	}
	close(cg.release)
	if !<-watcher {
		t.Error("the watcher's report of the first kill reported nothing")
	}
	<-ended
	if err := agg.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "c0.log"))
	if err != nil {
		t.Fatal(err)
	}
	oom, exited := strings.Index(string(b), "OOM-killed at"), strings.Index(string(b), "exited with status")
	if oom < 0 || exited < 0 || oom > exited || strings.Count(string(b), "OOM-killed at") != 1 {
		t.Errorf("the log holds, in this order:\n%s\nwant one OOM-killed at line, before the exit", b)
	}
}
