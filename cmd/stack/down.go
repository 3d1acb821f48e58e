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
		args:    "[-v] [FILE]",
		summary: "Stop the stack and remove it",
		help: `Stop the stack's containers (each its stop signal, then its stop_timeout,
then SIGKILL; dependents first) and remove its cgroups, per-container layers,
logs and state. A container whose PID 1 does not catch its stop signal is
killed at once: the kernel would discard the signal. Named volumes are kept
for the next up; -v removes them too.

down works from any directory with -p NAME, and also when the stack's
supervisor was killed: it then cleans up by itself. A stack that is not
running is not an error.`,
		setup: func(fs *flag.FlagSet) func(context.Context, *app, []string) error {
			volumes := fs.Bool("v", false, "remove the stack's named volumes too")
			return func(ctx context.Context, a *app, args []string) error {
				name, cfg, err := a.target(args)
				if err != nil {
					return err
				}
				// Ctrl-C abandons the wait for a supervisor to stop; the
				// stack is left for another down.
				ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
				defer stop()
				if err := supervisor.Down(ctx, cfg, name); err != nil || !*volumes {
					return err
				}
				return supervisor.RemoveVolumes(cfg, name)
			}
		},
	}
}
