package main

import (
	"context"
	"flag"
	"os/signal"
	"syscall"

	"github.com/stack-containers/stack/supervisor"
)

func downCommand() *command {
	return &command{
		name:    "down",
		args:    "[FILE]",
		summary: "Stop the stack and remove it",
		help: `Stop the stack's containers (each its stop signal, then its stop_timeout,
then SIGKILL; dependents first) and remove its cgroups, per-container layers,
logs and state. A container whose PID 1 does not catch its stop signal is
killed at once: the kernel would discard the signal.

down works from any directory with -p NAME, and also when the stack's
supervisor was killed: it then cleans up by itself. A stack that is not
running is not an error.`,
		setup: func(*flag.FlagSet) func(context.Context, *app, []string) error {
			return func(ctx context.Context, a *app, args []string) error {
				name, cfg, err := a.target(args)
				if err != nil {
					return err
				}
				// Ctrl-C abandons the wait for a supervisor to stop; the
				// stack is left for another down.
				ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
				defer stop()
				return supervisor.Down(ctx, cfg, name)
			}
		},
	}
}
