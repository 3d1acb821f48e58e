package supervisor

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/network"
)

// Status is one container as ps shows it.
type Status struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Health is "" without a check, else starting, healthy or unhealthy.
	Health string `json:"health"`
	// HealthOutput is the last failed check's output while unhealthy.
	HealthOutput string `json:"health_output,omitempty"`
	// Pid is PID 1's pid on the host, 0 when not running.
	Pid      int    `json:"pid"`
	Restarts int    `json:"restarts"`
	OOMKills uint64 `json:"oom_kills"`
	// ExitCode is nil while running.
	ExitCode *int `json:"exit_code"`
	// MemoryLimit is 0 when there is none.
	MemoryLimit int64 `json:"memory_limit"`
	// MemoryUsage is read from the cgroup now.
	MemoryUsage int64 `json:"memory_usage"`
	// Uptime is how long the current run has lasted, in whole seconds; 0
	// when not running.
	Uptime int64 `json:"uptime"`
	// IP is the address on the stack's network, "" when none.
	IP    string         `json:"ip"`
	Ports []network.Port `json:"ports"`
}

// StackStatus is the state of a stack as ps shows it.
type StackStatus struct {
	// Running is true while the stack's supervisor is alive.
	Running    bool
	Containers []Status
	// Warnings say why the state may not be what is (a full disk), for
	// ps to print beside it.
	Warnings []string
}

// ReadStatus reads the named stack's state and each running container's
// memory usage. A stack without state has no containers. If the supervisor
// died without marking the stack ended, containers it listed as running
// are shown stopped: nothing watches them any more (and see doc.go: they
// die with it).
func ReadStatus(cfg Config, name string, now time.Time) (*StackStatus, error) {
	paths, err := PathsOf(cfg.StateDir, name)
	if err != nil {
		return nil, err
	}
	st, err := ReadState(paths)
	if errors.Is(err, os.ErrNotExist) {
		return &StackStatus{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := &StackStatus{Running: !st.Ended && st.Supervisor.Alive()}
	var stale []string
	for _, c := range st.Containers {
		s := Status{
			Name:        c.Name,
			State:       c.State,
			Restarts:    c.Restarts,
			OOMKills:    c.OOMKills,
			ExitCode:    c.ExitCode,
			MemoryLimit: c.MemoryLimit,
			IP:          c.IP,
			Ports:       c.Ports,
		}
		if s.Ports == nil {
			s.Ports = []network.Port{}
		}
		if !out.Running && !st.Ended && c.State != StateExited {
			s.State = StateStopped
		}
		if s.State == StateRunning && !c.Process.Alive() {
			// Recorded as running, but its PID 1 has ended: the
			// supervisor records that a moment later, or cannot (a full
			// disk). ps shows what is, never a dead pid as running.
			s.State = StateExited
			stale = append(stale, c.Name)
		}
		if s.State == StateRunning {
			s.Health = c.Health
			if s.Health == HealthUnhealthy {
				s.HealthOutput = c.HealthOutput
			}
			s.Pid = c.Process.Pid
			s.ExitCode = nil
			s.Uptime = int64(now.Sub(c.StartedAt) / time.Second)
			stats, err := cfg.Driver.Load(c.Cgroup).Stats()
			if err != nil && !endedUnder(err) {
				return nil, fmt.Errorf("container %q: %w", c.Name, err)
			}
			s.MemoryUsage = stats.MemoryUsage
		}
		out.Containers = append(out.Containers, s)
	}
	out.Warnings = stateWarnings(paths, stale, now)
	return out, nil
}

// endedUnder reports whether err is what reading a cgroup gives when the
// container ends and its cgroup is removed during the read: the files are
// gone (ENOENT), or open but their cgroup is (ENODEV).
func endedUnder(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENODEV)
}

// staleAfter is how long the state file may lag behind a container's end
// before ps says so: the supervisor writes changes stateWriteDelay after
// them.
const staleAfter = time.Second

// stateWarnings says what makes the recorded state untrustworthy: the
// containers in stale ended without the state file saying so for longer
// than the supervisor takes to write it, and a full file system, which
// keeps it from writing the state and the logs.
func stateWarnings(paths Paths, stale []string, now time.Time) []string {
	var warnings []string
	if full, err := fileSystemFull(paths.Dir); err == nil && full {
		warnings = append(warnings, fmt.Sprintf("the file system of %s is full: the state and logs of the stack cannot be written; free some space", paths.Dir))
	}
	if fi, err := os.Stat(paths.State()); len(stale) > 0 && err == nil && now.Sub(fi.ModTime()) > staleAfter {
		warnings = append(warnings, fmt.Sprintf("the state file is out of date: %s ended without it saying so (see %s)",
			strings.Join(stale, ", "), paths.SupervisorLog()))
	}
	return warnings
}

// fileSystemFull reports whether the file system holding dir has no block
// or no inode left, even for root.
func fileSystemFull(dir string) (bool, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return false, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return fs.Bfree == 0 || (fs.Files > 0 && fs.Ffree == 0), nil
}
