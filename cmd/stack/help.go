package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

func helpCommand() *command {
	return &command{
		name:    "help",
		args:    "[COMMAND]",
		summary: "Show help for stack or a command",
		help:    "Show the list of commands, or the usage of one.",
		setup: func(*flag.FlagSet) func(context.Context, *app, []string) error {
			return func(_ context.Context, a *app, args []string) error {
				switch len(args) {
				case 0:
					a.usage(a.stdout)
					return nil
				case 1:
					cmd := a.lookup(args[0])
					if cmd == nil {
						return usageError("run 'stack help' for the list of commands", "unknown command %q", args[0])
					}
					a.commandHelp(a.stdout, cmd)
					return nil
				}
				return usageError("", "help takes at most one command")
			}
		},
	}
}

// usage prints the overview: synopsis, commands and global flags.
func (a *app) usage(w io.Writer) {
	fmt.Fprint(w, `Usage: stack [-f FILE] [-p NAME] COMMAND [ARGS]

stack runs a stack of containers described by a manifest, stack.yaml.

Commands:
`)
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	for _, c := range a.commands {
		if c.hidden {
			continue
		}
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, `
Global flags:
  -f FILE   the manifest (default ./stack.yaml, then ./stack.yml)
  -p NAME   the stack's name, instead of the manifest's

Exit status: 0 success, 1 runtime failure, 2 usage error or invalid manifest.
Run 'stack help COMMAND' for more about a command.
`)
}

// commandHelp prints one command's usage, text and flags.
func (a *app) commandHelp(w io.Writer, cmd *command) {
	fmt.Fprintf(w, "Usage: stack [-f FILE] [-p NAME] %s\n\n%s\n\n%s\n",
		strings.TrimSpace(cmd.name+" "+cmd.args), cmd.summary+".", cmd.help)
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	cmd.setup(fs)
	if hasFlags(fs) {
		fmt.Fprint(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}
