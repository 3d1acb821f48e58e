package main

import (
	"context"
	"flag"
	"fmt"

	"go.yaml.in/yaml/v3"
)

func configCommand() *command {
	return &command{
		name:    "config",
		args:    "[-q] [FILE]",
		summary: "Validate and print the normalized manifest",
		help: `Validate the manifest and print it normalized: variables (${VAR} from the
environment, then from .env beside the manifest) replaced, every default
filled in, env as a mapping, durations like "10s", signals by name, memory in
bytes and paths absolute. The output is itself a valid manifest that loads
the same (a literal $ in it is written $$).

Every problem is reported at once, one per line, as file:line:col: field: problem;
the exit status is then 2.`,
		setup: func(fs *flag.FlagSet) func(context.Context, *app, []string) error {
			quiet := fs.Bool("q", false, "only validate; print nothing")
			return func(_ context.Context, a *app, args []string) error {
				st, err := a.loadStack(args)
				if err != nil || *quiet {
					return err
				}
				enc := yaml.NewEncoder(a.stdout)
				enc.SetIndent(2)
				if err := enc.Encode(st); err != nil {
					return fmt.Errorf("print manifest: %w", err)
				}
				if err := enc.Close(); err != nil {
					return fmt.Errorf("print manifest: %w", err)
				}
				return nil
			}
		},
	}
}
