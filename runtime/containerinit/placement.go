package containerinit

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
)

// Placement is how a process (a container's init, a process entering a
// container) gets into the container's cgroup before it runs anything of
// the user's: the parent plans it, the process carries it out, on the
// thread that execs, as late as it can (join). Until then, what the
// process does is charged where the supervisor runs: its Go runtime's
// memory must not count against a container's limit (the seed's 2 MB
// experiment would not start).
type Placement struct {
	// Tasks are the tasks files of the cgroup's v1 hierarchies, inherited
	// open: the thread moves itself into each by writing "0" to it (see
	// cgroup's OpenTaskFiles), with no round trip to the parent and
	// without the lock a move by pid takes.
	Tasks []CgroupTasks
	// Wait, for a cgroup without tasks files (v2, where threads of one
	// process cannot be in different cgroups), has the process ask the
	// parent to move it (MsgReady) and wait until it has (MsgGo).
	Wait bool
}

// CgroupTasks is an inherited tasks file and its path, for errors.
type CgroupTasks struct {
	FD   int
	Path string
}

// join carries the placement out, in the process.
func (pl *Placement) join(pipe int) error {
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

// awaitPlacement reports the process ready and waits until the parent has
// put it in the container's cgroup. Everything so far was charged to the
// cgroup this process started in; from here on, and above all the program
// after execve, it is charged to the container's.
func awaitPlacement(pipe int) error {
	if err := Send(pipe, MsgReady, nil); err != nil {
		return fmt.Errorf("report ready: %w", err)
	}
	if kind, _, err := Receive(pipe); err != nil || kind != MsgGo {
		return fmt.Errorf("wait for cgroup placement: message %q, %v", kind, err)
	}
	return nil
}
