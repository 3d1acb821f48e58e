package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/stack-containers/stack/manifest"
	"github.com/stack-containers/stack/network"
	"github.com/stack-containers/stack/seccomp"
)

// The states of a container, as ps shows them.
const (
	StateCreated    = "created"
	StateRunning    = "running"
	StateRestarting = "restarting"
	StateExited     = "exited"
	StateStopped    = "stopped"
)

// State is what a stack's supervisor records under STACK_STATE_DIR/<stack>/
// for ps, logs and a down that finds the supervisor gone.
type State struct {
	Stack string `json:"stack"`
	// File is the manifest the stack was started from.
	File       string  `json:"file"`
	Supervisor Process `json:"supervisor"`
	// Cgroup is the stack's parent cgroup, e.g. "stack/demo".
	Cgroup string `json:"cgroup"`
	// Ended is set once no container is left running or to be restarted;
	// the state stays for ps and logs until down.
	Ended bool `json:"ended"`
	// Network is the stack's network (devices, subnet), nil when no
	// container is on it.
	Network    *network.Network `json:"network,omitempty"`
	Containers []ContainerState `json:"containers"`
}

// ContainerState is one container's entry in State.
type ContainerState struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Health is the current run's: "" without a check (health.go).
	Health string `json:"health"`
	// HealthOutput is the last failed check's output, on one line.
	HealthOutput string `json:"health_output,omitempty"`
	// Process is PID 1 of the current run, zero when not running.
	Process  Process `json:"process"`
	Restarts int     `json:"restarts"`
	OOMKills uint64  `json:"oom_kills"`
	// ExitCode is the last run's exit code (128+signal), nil while running
	// or before the first run ended.
	ExitCode    *int           `json:"exit_code"`
	Cgroup      string         `json:"cgroup"`
	LayerDir    string         `json:"layer_dir"`
	MemoryLimit int64          `json:"memory_limit"`
	StopSignal  syscall.Signal `json:"stop_signal"`
	StopTimeout time.Duration  `json:"stop_timeout"`
	// PIDNamespace is set when PID 1 is the init of its own pid namespace,
	// where an uncaught stop signal is discarded.
	PIDNamespace bool `json:"pid_namespace"`
	// After lists the containers this one is started after, so that a
	// down without the manifest stops them in reverse order.
	After      []string  `json:"after"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// Exec is what `stack exec` runs a command with, so that it needs
	// neither the supervisor nor the manifest.
	Exec ExecConfig `json:"exec"`
	// IP is the container's address on the stack's network (its net
	// owner's, for a joiner), "" when it is not on it; Ports its
	// published ports.
	IP    string         `json:"ip,omitempty"`
	Ports []network.Port `json:"ports,omitempty"`
	// Image is the ID of the container's image in the store ("" for a
	// rootfs), which `stack prune` keeps while the state is there.
	Image string `json:"image,omitempty"`
}

// ExecConfig is the identity a process exec'd into a container gets unless
// told otherwise: the container's own.
type ExecConfig struct {
	Env     []string `json:"env"`
	Workdir string   `json:"workdir"`
	// User is looked up in the container for the uid, gid and groups
	// (runtime.ExecSpec.User); UID and GID are what it resolved to at
	// the start, used when it is empty.
	User string `json:"user,omitempty"`
	UID  uint32 `json:"uid"`
	GID  uint32 `json:"gid"`
	// Caps and Seccomp are the container's capability set and seccomp
	// profile (the profile itself, not its file's path, so that a file
	// changed since the start changes nothing).
	Caps    []string         `json:"caps"`
	Seccomp *seccomp.Profile `json:"seccomp"`
}

// Paths are the places a stack's state lives.
type Paths struct {
	// Dir is STACK_STATE_DIR/<stack>.
	Dir string
}

// PathsOf returns where stack's state lives under stateDir. The name is
// checked as the manifest checks it, so that it never points outside.
func PathsOf(stateDir, stack string) (Paths, error) {
	if err := manifest.ValidateName(stack); err != nil {
		return Paths{}, fmt.Errorf("stack: %w", err)
	}
	return Paths{Dir: filepath.Join(stateDir, stack)}, nil
}

// State is the path of the state file.
func (p Paths) State() string { return filepath.Join(p.Dir, "state.json") }

// NetHosts is the file bound as a container's own /etc/hosts, for one
// whose hostname makes it differ from NetSharedHosts.
func (p Paths) NetHosts(container string) string {
	return filepath.Join(p.Dir, "net", container+".hosts")
}

// NetSharedHosts is the /etc/hosts that every other container on the
// stack's network shares, read-only. No container's own file has its
// name: container names have no '.'.
func (p Paths) NetSharedHosts() string { return filepath.Join(p.Dir, "net", "hosts") }

// NetResolvConf is the file bound as /etc/resolv.conf into every
// container on the stack's network: they all get the same, read-only.
func (p Paths) NetResolvConf() string { return filepath.Join(p.Dir, "net", "resolv.conf") }

// Containers is the directory of the containers' own directories (see
// newContainerDir).
func (p Paths) Containers() string { return filepath.Join(p.Dir, "containers") }

// SupervisorLog receives a background supervisor's own output. It is
// opened before the supervisor clears the stack's previous run, so that
// clearing keeps it.
func (p Paths) SupervisorLog() string { return filepath.Join(p.Dir, supervisorLog) }

// The names of the files of a stack's state directory.
const (
	lockFile      = "lock"
	supervisorLog = "supervisor.log"
)

// ReadState reads a stack's state; a stack that has none is reported with
// os.ErrNotExist.
func ReadState(p Paths) (*State, error) {
	b, err := os.ReadFile(p.State())
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("read state %s: %w", p.State(), err)
	}
	return &s, nil
}

func encodeState(s *State) ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode state of stack %q: %w", s.Stack, err)
	}
	return append(b, '\n'), nil
}

// writeStateFile replaces the state file atomically with the encoded state
// b: a reader sees the old state or the new one, never a part of it,
// because rename is atomic and the temporary file is complete before it.
func writeStateFile(p Paths, b []byte) error {
	tmp, err := os.CreateTemp(p.Dir, ".state-*.json")
	if err != nil {
		return fmt.Errorf("write state in %s: %w", p.Dir, err)
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write state %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), p.State()); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write state %s: %w", p.State(), err)
	}
	return nil
}

// Container returns the entry of the named container, or nil.
func (s *State) Container(name string) *ContainerState {
	for i := range s.Containers {
		if s.Containers[i].Name == name {
			return &s.Containers[i]
		}
	}
	return nil
}

// Alive reports whether the stack whose state is at p is running: its
// state is not marked ended and its supervisor is alive.
func Alive(p Paths) bool {
	st, err := ReadState(p)
	return err == nil && !st.Ended && st.Supervisor.Alive()
}
