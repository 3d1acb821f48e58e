package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/manifest"
	"github.com/stack-containers/stack/supervisor"
)

// superviseName is the hidden command that up -d runs in the background.
const superviseName = "__supervise"

// superviseCommand is the background supervisor of up -d (see
// supervisor.Detach): the stack comes on fd 3, the report goes to fd 4.
func superviseCommand() *command {
	return &command{
		name:    superviseName,
		hidden:  true,
		summary: "Run a stack's background supervisor (started by up -d)",
		help: `Not for users: up -d runs this to supervise the stack in the background.
The stack to run comes on descriptor 3; the report, once every container runs
or the start failed, goes to descriptor 4.`,
		setup: func(*flag.FlagSet) func(context.Context, *app, []string) error {
			return func(ctx context.Context, a *app, _ []string) error {
				// The init's image is copied into its memfd while up -d
				// still reads the manifest, rather than at the first start.
				initProgram.Preload()
				sigs := make(chan os.Signal, 2)
				signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
				defer signal.Stop(sigs)
				// Its own session has no terminal to hang up, but a
				// stray SIGHUP must not end the supervisor either.
				signal.Ignore(syscall.SIGHUP)
				return supervisor.ServeDetached(ctx, os.NewFile(3, "stack"), os.NewFile(4, "report"), sigs, a.detachedSetup)
			}
		},
	}
}

// detachedSetup prepares the background supervisor's process for st, once
// it has come: the configuration, from the environment up -d passed on;
// its output, sent to the stack's supervisor.log; its working directory.
func (a *app) detachedSetup(st *manifest.Stack) (supervisor.Config, error) {
	cfg, err := a.supervisorConfig()
	if err != nil {
		return cfg, err
	}
	log, err := supervisor.OpenSupervisorLog(cfg, st.Name)
	if err != nil {
		return cfg, err
	}
	defer log.Close()
	// From here on the process's output goes to the log, the Go
	// runtime's own (a panic, a fatal error) included.
	for _, fd := range []int{1, 2} {
		if err := unix.Dup3(int(log.Fd()), fd, 0); err != nil {
			return cfg, fmt.Errorf("stack %q: send the supervisor's output to its log: %w", st.Name, err)
		}
	}
	// A background process keeps no directory busy (the user's may be
	// removed or unmounted); the configuration's directories are
	// absolute, and so are the manifest's paths.
	if err := os.Chdir("/"); err != nil {
		return cfg, fmt.Errorf("stack %q: supervisor: %w", st.Name, err)
	}
	return cfg, nil
}
