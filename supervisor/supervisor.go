package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"slices"
	"sync"

	"github.com/stack-containers/stack/cgroup"
	"github.com/stack-containers/stack/image"
	"github.com/stack-containers/stack/manifest"
	"github.com/stack-containers/stack/network"
	"github.com/stack-containers/stack/runtime"
	"github.com/stack-containers/stack/supervisor/logs"
)

// ErrRunning is returned by Start for a stack whose supervisor is alive.
var ErrRunning = errors.New("already running")

// errStopping refuses to start a run of a container that is being stopped.
var errStopping = errors.New("container is being stopped")

// Config is what a supervisor needs besides the stack.
type Config struct {
	// StateDir is STACK_STATE_DIR: the stack's state lives in a directory
	// of its name below it.
	StateDir string
	// CgroupParent is STACK_CGROUP_PARENT: the stack's cgroups are made
	// at <CgroupParent>/<stack>/<container>.
	CgroupParent string
	// DataDir is STACK_DATA_DIR, an absolute path: what outlives down,
	// shared by every stack (the image store) or a stack's own (its named
	// volumes, VolumeDir).
	DataDir string
	// Owner owns the host directories made for bind mounts whose host
	// path is missing: the user who ran stack.
	Owner Owner
	// UnpackLimit bounds what one unpack of an archive or image layer may
	// write (STACK_UNPACK_LIMIT); 0 means image.DefaultUnpackLimit.
	UnpackLimit int64
	Driver      cgroup.Driver
	// Init is the program that sets up each container and each process
	// entering one; nil re-executes the running binary.
	Init *runtime.InitProgram
	// Pull fetches an image into the store, for a container's image
	// that its pull policy says to pull: the pull program, or the pull
	// in this process (package image/pull). Nil refuses every pull.
	Pull image.Puller
	// Output receives the aggregated `NAME | LINE` stream; nil for none.
	Output io.Writer
	// Color colors the names in Output.
	Color bool
	// Errors receives what goes wrong while the stack runs and cannot be
	// returned to anyone (a state file that cannot be written); nil means
	// os.Stderr.
	Errors io.Writer
	// Clock times restarts and grace periods; nil means the wall clock.
	Clock Clock
	// StartLimit caps how many containers start at once; 0 means
	// DefaultStartLimit.
	StartLimit int
}

// DefaultStartLimit is how many containers start at once unless
// Config.StartLimit says otherwise: starting is mostly the kernel's work
// on namespaces and mounts, so a few per CPU keep every CPU busy.
func DefaultStartLimit() int { return 2 * goruntime.NumCPU() }

// Supervisor runs one stack: it starts its containers, restarts them by
// their policies, captures their output and keeps the state file, until the
// stack ends by itself or is stopped.
type Supervisor struct {
	stack  *manifest.Stack
	cfg    Config
	paths  Paths
	graph  *graph
	lock   *stackLock
	logs   *logs.Aggregator
	parent cgroup.Cgroup
	ctrs   map[string]*container

	// loops counts the containers' run loops.
	loops sync.WaitGroup
	// watchers are the OOM event readers, ended by unwatch, which cancels
	// watchCtx, their context.
	watchers sync.WaitGroup
	watchCtx context.Context
	unwatch  context.CancelFunc

	stopOnce sync.Once
	killOnce sync.Once
	// kill is closed when the grace periods are to end at once.
	kill chan struct{}
	// done is closed once the stack has ended and its resources are gone.
	done chan struct{}
	// result is what Wait returns; set before done is closed.
	result error

	// state is the stack's state and the writer of its file; set by
	// prepare.
	state *stateWriter
	// roots holds the containers' root filesystems in the image store.
	roots roots
	// netPlan names the stack network's devices and rules when some
	// container is on it (set by prepare before any exists); net is the
	// network once made.
	netPlan *network.Network
	net     *stackNet
}

// container is the supervisor's view of one container.
type container struct {
	def       *manifest.Container
	cg        cgroup.Cgroup
	log       *logs.Log
	restarter *Restarter
	// dir is the container's own directory, which holds its log and its
	// writable layer (containerdir.go).
	dir string
	// layers are the root filesystem, bottom first: the rootfs directory,
	// an archive's unpacked in the image store, or an image's layers;
	// set by resolveRoots before any start, which also sets def's
	// defaults from the image.
	layers []string
	// imageID is the image's ID in the store; "" for a rootfs.
	imageID string
	// done is closed when the run loop has returned.
	done chan struct{}

	// mu guards the fields below, and is held across a run's start so
	// that a stop either comes before it (and prevents it) or after it
	// (and sees the run).
	mu       sync.Mutex
	stopping bool
	stop     chan struct{} // closed when stopping is set
	looping  bool          // the run loop was started
	cur      *run          // the current run; nil between runs
	oomKills uint64        // runs ended or struck by the OOM killer, as reported
	failure  error         // why the container's final end counts as a failure
	// progress is what depends_on conditions wait for (health.go);
	// changed is closed and replaced whenever it changes.
	progress progress
	changed  chan struct{}

	// oomMu is held across reportOOM, so that its reports come one after
	// the other, each with its event.
	oomMu sync.Mutex
}

// run is one start of a container, until its PID 1 ends.
type run struct {
	rc             *runtime.Container
	stdout, stderr *os.File
	oomBefore      uint64
	// oomCounted tells that this run's OOM kill is in the container's
	// count already (guarded by the container's mu).
	oomCounted bool
	// checks runs the run's health checks; nil without any.
	checks *checker
}

// Wait waits until the stack has ended (by itself or by Stop) and its
// resources are released. It returns nil when every container's last run
// exited 0 or was stopped by stack, and otherwise why not.
func (s *Supervisor) Wait() error {
	<-s.done
	return s.result
}

// Done is closed once the stack has ended and its resources are released.
func (s *Supervisor) Done() <-chan struct{} { return s.done }

func hasNamespace(c *manifest.Container, ns manifest.Namespace) bool {
	return slices.Contains(c.Namespaces, ns)
}

func wrapName(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("container %q: %w", name, err)
}

// warn reports a problem that nobody can be returned it.
func (s *Supervisor) warn(err error) {
	fmt.Fprintf(s.cfg.Errors, "stack: warning: %v\n", err)
}
