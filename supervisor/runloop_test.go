package supervisor

import (
	"path/filepath"
	"testing"

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
	agg, err := logs.New(logs.Config{Dir: filepath.Join(dir, "logs"), Names: []string{"mem"}})
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
