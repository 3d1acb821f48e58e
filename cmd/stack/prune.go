package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/stack-containers/stack/image"
	"github.com/stack-containers/stack/supervisor"
)

func pruneCommand() *command {
	return &command{
		name:    "prune",
		summary: "Remove images and unpacked archives that no stack uses",
		help: `Remove from the local store (STACK_DATA_DIR/images) every image that no
stack's state names and no running container uses, every unpacked rootfs
archive that no running container uses, and then every layer and blob that
no image left needs. It waits for pulls under way to end.`,
		setup: func(fs *flag.FlagSet) func(context.Context, *app, []string) error {
			return func(_ context.Context, a *app, args []string) error {
				if len(args) > 0 {
					return usageError("", "prune takes no arguments")
				}
				cfg, err := a.supervisorConfig()
				if err != nil {
					return err
				}
				users, err := supervisor.ImageUsers(cfg.StateDir)
				if err != nil {
					return err
				}
				keep := map[string]bool{}
				for id := range users {
					keep[id] = true
				}
				store, err := image.Open(cfg.DataDir)
				if err != nil {
					return err
				}
				pruned, err := store.Prune(keep)
				if err != nil {
					return err
				}
				for _, ref := range pruned.Images {
					fmt.Fprintf(a.stdout, "removed %s\n", ref)
				}
				fmt.Fprintf(a.stdout, "removed %d images, %d layers, %d unpacked archives\n", len(pruned.Images), pruned.Layers, pruned.Archives)
				return nil
			}
		},
	}
}
