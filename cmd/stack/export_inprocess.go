//go:build !stackinit

package main

import (
	"context"

	"github.com/stack-containers/stack/internal/export"
	"github.com/stack-containers/stack/internal/export/kubernetes"
)

// exportKubernetes checks the options, loads the stack of args and
// exports it, in this process: a plain `go build` links package kube
// into stack, where `make build` embeds the export program instead (see
// export_program.go).
func (a *app) exportKubernetes(ctx context.Context, args []string, o export.Options) error {
	if err := kubernetes.Check(o); err != nil {
		return err
	}
	st, err := a.loadStack(args)
	if err != nil {
		return err
	}
	return kubernetes.Export(ctx, st, o, a.stdout, a.stderr)
}
