package supervisor

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// Status is one container as ps shows it.
type Status struct {
	Name  string `json:"name"`
	State string `json:"state"`
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
}

// StackStatus is the state of a stack as ps shows it.
type StackStatus struct {
	// Running is true while the stack's supervisor is alive.
	Running    bool
	Containers []Status
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
	for _, c := range st.Containers {
		s := Status{
			Name:        c.Name,
			State:       c.State,
			Restarts:    c.Restarts,
			OOMKills:    c.OOMKills,
			ExitCode:    c.ExitCode,
			MemoryLimit: c.MemoryLimit,
		}
		if !out.Running && !st.Ended && c.State != StateExited {
			s.State = StateStopped
		}
		if s.State == StateRunning {
			s.Pid = c.Process.Pid
			s.ExitCode = nil
			s.Uptime = int64(now.Sub(c.StartedAt) / time.Second)
			stats, err := cfg.Driver.Load(c.Cgroup).Stats()
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("container %q: %w", c.Name, err)
			}
			s.MemoryUsage = stats.MemoryUsage
		}
		out.Containers = append(out.Containers, s)
	}
	return out, nil
}
