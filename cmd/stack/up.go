package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/cgroup"
	"github.com/stack-containers/stack/manifest"
	"github.com/stack-containers/stack/runtime"
	"github.com/stack-containers/stack/supervisor"
)

func upCommand() *command {
	return &command{
		name:    "up",
		args:    "[-d] [--wait] [--wait-timeout D] [FILE]",
		summary: "Start the stack",
		help: `Validate the manifest, then start every container concurrently, each once
the containers it depends on (depends_on, join) are running, each in its own
cgroup. In the foreground the containers' output is shown as NAME | LINE and
stack's own events as NAME * EVENT; the first Ctrl-C (or SIGTERM), during
the start as after it, stops the stack gracefully (stop signal, stop_timeout,
then SIGKILL), a second one kills at once; a closed output (stack up | head -1) stops it gracefully too. up
returns when no container is left running or to be restarted; its exit
status is 0 when every container's last run exited 0 or was stopped, 1
otherwise. ps and logs keep working until down.

With -d, up returns once every container runs and leaves a background
supervisor; stop it with down. A container with depends_on conditions starts
once they hold (service_healthy: the dependency's health check passed;
service_completed_successfully: it exited 0); one whose condition can no
longer be met fails up, naming both.

--wait implies -d and returns only once every container runs and every one
with a health check is healthy; it exits 1, leaving the stack up, when one
exits or turns unhealthy, or when --wait-timeout (default none) passes.

If a container fails to start, up stops what it started, removes everything,
says why and exits 1. A stack that is already running is refused.`,
		setup: func(fs *flag.FlagSet) func(context.Context, *app, []string) error {
			detach := fs.Bool("d", false, "start in the background; return once every container runs")
			wait := fs.Bool("wait", false, "like -d, then wait until every container runs and is healthy")
			waitTimeout := fs.Duration("wait-timeout", 0, "with --wait: give up after `D` (default: never)")
			return func(ctx context.Context, a *app, args []string) error {
				if *waitTimeout < 0 {
					return usageError("", "up: --wait-timeout %v is negative", *waitTimeout)
				}
				if *waitTimeout > 0 && !*wait {
					return usageError("add --wait", "up: --wait-timeout needs --wait")
				}
				var bg *supervisor.Background
				if *detach || *wait {
					// Started first, the background supervisor's process
					// gets going while the manifest is read; an invalid
					// one ends it (Abandon) before the error is told.
					bg = supervisor.Spawn([]string{"stack", superviseName})
				}
				st, cfg, err := a.loadStackAndConfig(args)
				if err != nil {
					if bg != nil {
						bg.Abandon()
					}
					return err
				}
				if bg != nil {
					if err := bg.Supervise(st, cfg); err != nil {
						return withRunningHint(err, st.Name)
					}
					if *wait {
						return waitReady(ctx, a, cfg, st, *waitTimeout)
					}
					_, err := fmt.Fprintf(a.stdout, "stack %q is up: %s running\n", st.Name, plural(len(st.Containers), "container"))
					return err
				}
				cfg.Color = colorFor(a.stdout)
				// A closed terminal (SIGHUP) stops the stack as Ctrl-C
				// does, rather than leave it to die with the supervisor.
				sigs := make(chan os.Signal, 3)
				signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
				defer signal.Stop(sigs)
				// So does a closed output (`stack up | head -1`): left to
				// Go's default, its SIGPIPE would kill the supervisor and
				// with it every container, without their grace periods
				// and with their cgroups left for down. Kept running,
				// the stack would hold the pipeline open with nothing to
				// show. Handling SIGPIPE makes the write fail instead
				// (EPIPE), which stops the stack once; handled, not
				// ignored, so that the containers still get the default.
				pipe := make(chan os.Signal, 1)
				signal.Notify(pipe, syscall.SIGPIPE)
				defer signal.Stop(pipe)
				cfg.Output = &stopOnClose{w: a.stdout, stop: func() {
					fmt.Fprintln(a.stderr, "stack: the output was closed: stopping the stack")
					select {
					case sigs <- outputClosed{}:
					default: // a stop is already on its way
					}
				}}
				return withRunningHint(supervisor.Run(ctx, st, cfg, sigs, nil), st.Name)
			}
		},
	}
}

// waitReady is up --wait after the stack has started.
func waitReady(ctx context.Context, a *app, cfg supervisor.Config, st *manifest.Stack, timeout time.Duration) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	if err := supervisor.WaitReady(ctx, cfg, st); err != nil {
		return &exitError{code: 1, err: fmt.Errorf("stack %q: %w", st.Name, err),
			hint: fmt.Sprintf("the stack is left up: stack -p %s ps and logs show why; stack -p %s down stops it", st.Name, st.Name)}
	}
	_, err := fmt.Fprintf(a.stdout, "stack %q is up: every container running and healthy\n", st.Name)
	return err
}

// plural is "1 container", "2 containers".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// outputClosed is what a foreground up's stream receives when its output
// is closed: it stops the stack as a first SIGTERM does.
type outputClosed struct{}

func (outputClosed) String() string { return "closed output" }
func (outputClosed) Signal()        {}

// stopOnClose passes writes to w until one finds w closed (EPIPE), and then
// calls stop, once.
type stopOnClose struct {
	w    io.Writer
	stop func()
	once sync.Once
}

func (s *stopOnClose) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if errors.Is(err, syscall.EPIPE) {
		s.once.Do(s.stop)
	}
	return n, err
}

// withRunningHint adds to the refusal of a stack that is already running
// how to stop it; other errors pass unchanged.
func withRunningHint(err error, stack string) error {
	if errors.Is(err, supervisor.ErrRunning) {
		return &exitError{code: 1, err: err, hint: fmt.Sprintf("stop it first: stack -p %s down", stack)}
	}
	return err
}

// loadStackAndConfig is the manifest of args (see loadStack) and the
// supervisor's configuration, in that order.
func (a *app) loadStackAndConfig(args []string) (*manifest.Stack, supervisor.Config, error) {
	st, err := a.loadStack(args)
	if err != nil {
		return nil, supervisor.Config{}, err
	}
	cfg, err := a.supervisorConfig()
	return st, cfg, err
}

// supervisorConfig reads the environment (STACK_STATE_DIR,
// STACK_CGROUP_PARENT, STACK_DATA_DIR, and SUDO_UID and SUDO_GID for who
// invoked stack) and finds the host's cgroup driver.
func (a *app) supervisorConfig() (supervisor.Config, error) {
	stateDir := os.Getenv("STACK_STATE_DIR")
	if stateDir == "" {
		stateDir = "/run/stack"
	}
	stateDir, err := filepath.Abs(stateDir)
	if err != nil {
		return supervisor.Config{}, fmt.Errorf("STACK_STATE_DIR: %w", err)
	}
	parent := os.Getenv("STACK_CGROUP_PARENT")
	if parent == "" {
		parent = "stack"
	}
	drv, err := cgroup.Detect()
	if err != nil {
		return supervisor.Config{}, err
	}
	dataDir, err := dataDir()
	if err != nil {
		return supervisor.Config{}, err
	}
	unpackLimit, err := unpackLimit()
	if err != nil {
		return supervisor.Config{}, err
	}
	return supervisor.Config{
		StateDir: stateDir, CgroupParent: parent, DataDir: dataDir, Owner: invoker(),
		UnpackLimit: unpackLimit, Driver: drv, Errors: a.stderr,
		Init: initProgram, Pull: pullImage,
	}, nil
}

// initProgram is the containers' init, one for the process: its memfd is
// made once, however many configurations are read.
var initProgram = runtime.NewInitProgram(initELF)

// unpackLimit is STACK_UNPACK_LIMIT, a size as the manifest's memory takes
// it; 0 when unset (the store's default).
func unpackLimit() (int64, error) {
	v := os.Getenv("STACK_UNPACK_LIMIT")
	if v == "" {
		return 0, nil
	}
	n, err := manifest.ParseSize(v)
	if err == nil && n < 1 {
		err = fmt.Errorf("%q: must be at least one byte", v)
	}
	if err != nil {
		return 0, usageError("write it as bytes or with k, m or g: STACK_UNPACK_LIMIT=32G", "STACK_UNPACK_LIMIT: %v", err)
	}
	return n, nil
}

// dataDir is STACK_DATA_DIR, absolute: what outlives down (the image
// store, the named volumes).
func dataDir() (string, error) {
	dir := os.Getenv("STACK_DATA_DIR")
	if dir == "" {
		dir = "/var/lib/stack"
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("STACK_DATA_DIR: %w", err)
	}
	return dir, nil
}

// target is the stack that down, ps and logs act on (-p, or the
// manifest's name) and the supervisor configuration to reach it with.
func (a *app) target(args []string) (string, supervisor.Config, error) {
	name := a.project
	if name == "" || len(args) > 0 {
		st, err := a.loadStack(args)
		if err != nil {
			return "", supervisor.Config{}, err
		}
		name = st.Name
	}
	cfg, err := a.supervisorConfig()
	return name, cfg, err
}

// colorFor reports whether output to w gets colors: only on a terminal,
// and only when NO_COLOR is unset (https://no-color.org).
func colorFor(w io.Writer) bool {
	if _, set := os.LookupEnv("NO_COLOR"); set {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
