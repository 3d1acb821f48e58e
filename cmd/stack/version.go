package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func versionCommand() *command {
	return &command{
		name:    "version",
		summary: "Print the version",
		help:    "Print stack's version and the Go toolchain and platform it was built for.",
		setup: func(*flag.FlagSet) func(context.Context, *app, []string) error {
			return func(_ context.Context, a *app, args []string) error {
				if len(args) > 0 {
					return usageError("", "version takes no arguments")
				}
				_, err := fmt.Fprintf(a.stdout, "stack version %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
				return err
			}
		},
	}
}
