package runtime

import (
	"fmt"
	"os"

	"github.com/stack-containers/stack/runtime/containerinit"
)

// taskFiler is a Cgroup that a thread can join by itself: cgroup v1's.
type taskFiler interface {
	OpenTaskFiles() ([]*os.File, error)
}

// planPlacement fills pl in for cg (containerinit.Placement says how the
// process carries it out). It returns files, which the process inherits
// as descriptors 3 onwards, with the tasks files appended, and the cgroup
// the parent still has to move the process into when it reports ready,
// or nil.
func planPlacement(pl *containerinit.Placement, cg Cgroup, files []*os.File) ([]*os.File, Cgroup, error) {
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
		pl.Tasks = append(pl.Tasks, containerinit.CgroupTasks{FD: initPipeFD + len(files), Path: f.Name()})
		files = append(files, f)
	}
	return files, nil, nil
}
