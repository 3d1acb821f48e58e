package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/stack-containers/stack/supervisor"
	"github.com/stack-containers/stack/supervisor/logs"
)

func logsCommand() *command {
	return &command{
		name:    "logs",
		args:    "[-f] [-n N] [-t] [CONTAINER...]",
		summary: "Show the containers' logs",
		help: `Show the persisted logs of the stack's containers (all, or those named),
merged in time order, as NAME | LINE, with stack's own events as NAME * EVENT.
They stay readable after the stack has ended, until down.`,
		setup: func(fs *flag.FlagSet) func(context.Context, *app, []string) error {
			follow := fs.Bool("f", false, "follow: keep printing new lines, across restarts, until the stack ends")
			tail := fs.Int("n", logs.TailAll, "show only the last `N` lines of each container (default: all)")
			stamps := fs.Bool("t", false, "show each line's time")
			return func(ctx context.Context, a *app, args []string) error {
				if *tail < 0 && *tail != logs.TailAll {
					return usageError("", "logs: -n %d: want a number of lines, 0 or more", *tail)
				}
				name, cfg, err := a.target(nil)
				if err != nil {
					return err
				}
				paths, err := supervisor.PathsOf(cfg.StateDir, name)
				if err != nil {
					return err
				}
				dirs, err := supervisor.ContainerDirs(paths)
				if errors.Is(err, os.ErrNotExist) {
					return &exitError{code: 1, err: fmt.Errorf("stack %q has no logs", name), hint: "logs are kept from up until down"}
				}
				if err != nil {
					return err
				}
				ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
				defer stop()
				return logs.Print(ctx, a.stdout, dirs, logs.PrintOptions{
					Containers: args,
					Tail:       *tail,
					Timestamps: *stamps,
					Color:      colorFor(a.stdout),
					Follow:     *follow,
					Stopped:    func() bool { return !supervisor.Alive(paths) },
				})
			}
		},
	}
}
