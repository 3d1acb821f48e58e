package runtime

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
)

// placement is how a process (a container's init, a process entering a
// container) gets into the container's cgroup before it runs anything of
// the user's: the parent plans it (plan), the process carries it out, on
// the thread that execs, as late as it can (join). Until then, what the
// process does is charged where the supervisor runs: its Go runtime's
// memory must not count against a container's limit (the seed's 2 MB
// experiment would not start).
type placement struct {
	// Tasks are the tasks files of the cgroup's v1 hierarchies, inherited
	// open: the thread moves itself into each by writing "0" to it (see
	// cgroup's OpenTaskFiles), with no round trip to the parent and
	// without the lock a move by pid takes.
	Tasks []cgroupTasks
	// Wait, for a cgroup without tasks files (v2, where threads of one
	// process cannot be in different cgroups), has the process ask the
	// parent to move it (msgReady) and wait until it has (msgGo).
	Wait bool
}

// cgroupTasks is an inherited tasks file and its path, for errors.
type cgroupTasks struct {
	FD   int
	Path string
}

// taskFiler is a Cgroup that a thread can join by itself: cgroup v1's.
type taskFiler interface {
	OpenTaskFiles() ([]*os.File, error)
}

// plan fills pl in for cg. It returns files, which the process inherits as
// descriptors 3 onwards, with the tasks files appended, and the cgroup the
// parent still has to move the process into when it reports ready, or nil.
func (pl *placement) plan(cg Cgroup, files []*os.File) ([]*os.File, Cgroup, error) {
	if cg == nil {
		return files, nil, nil
	}
	tf, ok := cg.(taskFiler)
	if !ok {
		pl.Wait = true
		return files, cg, nil
	}
	tasks, err := tf.OpenTaskFiles()
	if err != nil {
		return files, nil, fmt.Errorf("join cgroup %s: %w", cg.Path(), err)
	}
	for _, f := range tasks {
		pl.Tasks = append(pl.Tasks, cgroupTasks{FD: initPipeFD + len(files), Path: f.Name()})
		files = append(files, f)
	}
	return files, nil, nil
}

// join carries the placement out, in the process.
func (pl *placement) join(pipe int) error {
	for _, t := range pl.Tasks {
		if _, err := linux.IgnoringEINTRN(func() (int, error) { return unix.Write(t.FD, []byte("0")) }); err != nil {
			return fmt.Errorf("join cgroup: write 0 to %s: %w", t.Path, err)
		}
		unix.Close(t.FD)
	}
	if pl.Wait {
		return awaitPlacement(pipe)
	}
	return nil
}
