package supervisor

import (
	"io/fs"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stack-containers/stack/cgroup"
)

// endingDriver hands out cgroups that read as a container's do while it
// ends: the cgroup removed between the open of a file and its read.
type endingDriver struct{ cgroup.Driver }

func (endingDriver) Load(path string) cgroup.Cgroup { return endingCgroup{} }

type endingCgroup struct{ cgroup.Cgroup }

func (endingCgroup) Stats() (cgroup.Stats, error) {
	return cgroup.Stats{}, &fs.PathError{Op: "read", Path: "memory.usage_in_bytes", Err: syscall.ENODEV}
}

func writeTestState(t *testing.T, p Paths, st *State) {
	t.Helper()
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := encodeState(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeStateFile(p, b); err != nil {
		t.Fatal(err)
	}
}

// TestReadStatusWhileContainersEnd reads the status of a stack whose
// containers end under ps: one's cgroup goes while it is read (ENODEV),
// another is recorded as running though its PID 1 has ended (a state file
// that could not be rewritten). ps must neither fail nor show a dead pid
// as running.
func TestReadStatusWhileContainersEnd(t *testing.T) {
	dir := t.TempDir()
	p, err := PathsOf(dir, "demo")
	if err != nil {
		t.Fatal(err)
	}
	self, err := processOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	ended := exec.Command("true")
	if err := ended.Run(); err != nil {
		t.Fatal(err)
	}
	gone := Process{Pid: ended.Process.Pid, Start: 1}
	writeTestState(t, p, &State{Stack: "demo", Supervisor: self, Containers: []ContainerState{
		{Name: "ending", State: StateRunning, Process: self},
		{Name: "dead", State: StateRunning, Process: gone},
	}})
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(p.State(), old, old); err != nil {
		t.Fatal(err)
	}
	st, err := ReadStatus(Config{StateDir: dir, Driver: endingDriver{}}, "demo", time.Now())
	if err != nil {
		t.Fatalf("ps fails while a container ends: %v", err)
	}
	byName := map[string]Status{}
	for _, c := range st.Containers {
		byName[c.Name] = c
	}
	if c := byName["ending"]; c.State != StateRunning || c.Pid != self.Pid {
		t.Errorf("ending: %+v, want running as pid %d", c, self.Pid)
	}
	if c := byName["dead"]; c.State == StateRunning || c.Pid != 0 {
		t.Errorf("dead: %+v, want not running, pid 0", c)
	}
	if len(st.Warnings) == 0 {
		t.Error("no warning that the state file is out of date")
	}
}
