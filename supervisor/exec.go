package supervisor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/runtime"
)

// Exec: a command run inside a running container, for `stack exec` and
// the health checks. It needs only the state file, not the supervisor: a
// container that runs can be entered whatever became of its supervisor.

// ErrNotRunning is returned by Exec for a container that does not run.
var ErrNotRunning = errors.New("is not running")

// ExecRequest is a command to run inside a container of a stack.
type ExecRequest struct {
	Container string
	Args      []string
	// Env is KEY=VALUE over the container's environment.
	Env []string
	// Workdir and User replace the container's when not empty; User is
	// uid[:gid] or user[:group], names looked up inside the container.
	Workdir, User string
	// Tty asks for a terminal (runtime.ExecSpec.Tty) of size TtySize.
	Tty     bool
	TtySize *unix.Winsize
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
}

// Exec starts req's command in its container of the named stack and returns
// once it runs. A container that is not running is reported with
// ErrNotRunning; a program that cannot be run with a *runtime.CommandError.
func Exec(cfg Config, stack string, req ExecRequest) (*runtime.ExecProcess, error) {
	paths, err := PathsOf(cfg.StateDir, stack)
	if err != nil {
		return nil, err
	}
	st, err := ReadState(paths)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("container %q %w: stack %q is not running", req.Container, ErrNotRunning, stack)
	}
	if err != nil {
		return nil, err
	}
	cs := st.Container(req.Container)
	if cs == nil {
		return nil, fmt.Errorf("stack %q has no container %q", stack, req.Container)
	}
	proc := cs.Process
	if cs.State != StateRunning || !proc.Alive() {
		return nil, fmt.Errorf("container %q %w", req.Container, ErrNotRunning)
	}
	spec := execSpec(req.Container, proc, cs.Exec, req)
	spec.Cgroup = cfg.Driver.Load(cs.Cgroup)
	spec.Init = cfg.Init
	p, err := runtime.Exec(spec)
	if runtime.ErrNotRunning(err) {
		return nil, fmt.Errorf("container %q %w", req.Container, ErrNotRunning)
	}
	return p, err
}

// execSpec is the runtime's description of req run in the container whose
// PID 1 is proc and whose exec defaults are ex.
func execSpec(name string, proc Process, ex ExecConfig, req ExecRequest) *runtime.ExecSpec {
	workdir, user := ex.Workdir, ex.User
	if req.Workdir != "" {
		workdir = req.Workdir
	}
	if req.User != "" {
		user = req.User
	}
	return &runtime.ExecSpec{
		Name:    name,
		Pid:     proc.Pid,
		Same:    proc.Alive,
		Args:    req.Args,
		Env:     mergeEnv(ex.Env, req.Env),
		Workdir: workdir,
		User:    user,
		UID:     ex.UID,
		GID:     ex.GID,
		Caps:    ex.Caps,
		Seccomp: ex.Seccomp,
		Tty:     req.Tty,
		TtySize: req.TtySize,
		Stdin:   req.Stdin,
		Stdout:  req.Stdout,
		Stderr:  req.Stderr,
	}
}

// mergeEnv is base with each KEY=VALUE of over replacing base's KEY, or
// added after it.
func mergeEnv(base, over []string) []string {
	env := append([]string{}, base...)
	for _, kv := range over {
		key, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, e := range env {
			if k, _, _ := strings.Cut(e, "="); k == key {
				env[i], replaced = kv, true
			}
		}
		if !replaced {
			env = append(env, kv)
		}
	}
	return env
}
