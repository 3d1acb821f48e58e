package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

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
				cfg, err := a.supervisorConfig()
				if err != nil {
					return err
				}
				sigs := make(chan os.Signal, 2)
				signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
				defer signal.Stop(sigs)
				// Its own session has no terminal to hang up, but a
				// stray SIGHUP must not end the supervisor either.
				signal.Ignore(syscall.SIGHUP)
				return supervisor.ServeDetached(ctx, cfg, os.NewFile(3, "stack"), os.NewFile(4, "report"), sigs)
			}
		},
	}
}
