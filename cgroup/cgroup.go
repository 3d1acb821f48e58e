package cgroup

import (
	"context"
	"errors"
	"os"
)

// Resources are the limits a cgroup enforces; a zero field means no limit.
type Resources struct {
	// Memory is the memory limit in bytes (swap is not allowed on top).
	Memory int64
	// CPUs is the CPU quota in cores.
	CPUs float64
	// Pids is the maximum number of processes.
	Pids int64
	// Devices, when not nil, is the complete list of device accesses the
	// cgroup allows; everything else is denied (an empty list denies all).
	// nil leaves device access as the parent cgroup's.
	Devices []DeviceRule
}

// Stats is a snapshot of a cgroup's accounting.
type Stats struct {
	MemoryUsage int64
	MemoryPeak  int64
	// MemoryLimit is 0 when there is no limit.
	MemoryLimit int64
	Pids        []int
}

// ErrNoCgroupFD is returned by Cgroup.OpenFD when the driver cannot hand out
// a directory for CLONE_INTO_CGROUP (cgroup v1).
var ErrNoCgroupFD = errors.New("cgroup: CLONE_INTO_CGROUP needs cgroup v2")

// Cgroup is one cgroup, in every hierarchy the driver manages.
type Cgroup interface {
	// Path is the cgroup's path relative to the hierarchy roots,
	// e.g. "stack/demo/web".
	Path() string
	// Set applies limits; it may be called on a live cgroup.
	Set(Resources) error
	// AddProc moves a process into the cgroup.
	AddProc(pid int) error
	// OpenFD opens the cgroup's directory for SysProcAttr.CgroupFD; the
	// caller closes it. ErrNoCgroupFD on v1.
	OpenFD() (*os.File, error)
	// Procs lists the processes in the cgroup.
	Procs() ([]int, error)
	Stats() (Stats, error)
	// OOMKills is the number of times the OOM killer has killed in the
	// cgroup since it was created: one per OOM kill, however many of the
	// cgroup's processes it took.
	OOMKills() (uint64, error)
	// OOMEvents sends on the returned channel each time the OOM killer acts
	// in the cgroup. The channel is closed when ctx ends or the cgroup is
	// removed.
	OOMEvents(ctx context.Context) (<-chan struct{}, error)
	// Kill SIGKILLs every process in the cgroup and returns once it is
	// empty. The cgroup stays fit for new processes (a restart's).
	Kill() error
	// Destroy removes the cgroup and its descendants; a missing cgroup is
	// not an error.
	Destroy() error
	// Remove is Kill, then Destroy, by the quickest means of the version:
	// no process joins the cgroup again. A cgroup that is already empty, as a
	// container's is once its PID 1 has been reaped, is removed at once,
	// with no listing and no signal: rmdir(2) removes only a cgroup with
	// no process and no child, and nothing can join one that is gone.
	Remove() error
}

// Driver makes cgroups of one cgroup version.
type Driver interface {
	// Create makes the cgroup at path (idempotent), with its parents, and
	// applies r.
	Create(path string, r Resources) (Cgroup, error)
	// Load returns a handle on an existing cgroup without changing it.
	Load(path string) Cgroup
	// Prune removes the cgroup at path if it is empty: one that still has
	// children or processes (another stack's, say), or is missing, is left
	// as it is, without error. It never kills anything and never touches
	// path's ancestors, which may not be stack's to remove.
	Prune(path string) error
	// Version is 1 or 2.
	Version() int
}
