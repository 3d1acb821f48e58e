package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/stack-containers/stack/image"
	"github.com/stack-containers/stack/supervisor"
)

func imagesCommand() *command {
	return &command{
		name:    "images",
		args:    "[--format table|json]",
		summary: "List the images in the local store",
		help: `One row per image in the local store (STACK_DATA_DIR/images): its reference,
ID (the digest of its config), size unpacked, and the stacks whose state
names it.

--format json prints one JSON array; each element has reference, id, digest
(the manifest's, "" for a docker-archive), size (bytes), layers and stacks.`,
		setup: func(fs *flag.FlagSet) func(context.Context, *app, []string) error {
			format := fs.String("format", "table", "output format: table or json")
			return func(_ context.Context, a *app, args []string) error {
				if *format != "table" && *format != "json" {
					return usageError("", "images: unknown format %q: want table or json", *format)
				}
				if len(args) > 0 {
					return usageError("", "images takes no arguments")
				}
				cfg, err := a.supervisorConfig()
				if err != nil {
					return err
				}
				store, err := image.Open(cfg.DataDir)
				if err != nil {
					return err
				}
				recs, err := store.Records()
				if err != nil {
					return err
				}
				users, err := supervisor.ImageUsers(cfg.StateDir)
				if err != nil {
					return err
				}
				slices.SortFunc(recs, func(x, y image.Record) int { return strings.Compare(x.Reference, y.Reference) })
				rows := make([]imageRow, 0, len(recs))
				for _, r := range recs {
					stacks := users[r.ID]
					if stacks == nil {
						stacks = []string{}
					}
					rows = append(rows, imageRow{Reference: r.Reference, ID: r.ID, Digest: r.Digest, Size: r.Size, Layers: len(r.Layers), Stacks: stacks})
				}
				if *format == "json" {
					b, err := json.MarshalIndent(rows, "", "  ")
					if err != nil {
						return fmt.Errorf("images: encode: %w", err)
					}
					_, err = a.stdout.Write(append(b, '\n'))
					return err
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "REFERENCE\tID\tSIZE\tSTACKS")
				for _, r := range rows {
					stacks := strings.Join(r.Stacks, ",")
					if stacks == "" {
						stacks = "-"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Reference, shortID(r.ID), supervisor.FormatBytes(r.Size), stacks)
				}
				return tw.Flush()
			}
		},
	}
}

type imageRow struct {
	Reference string   `json:"reference"`
	ID        string   `json:"id"`
	Digest    string   `json:"digest"`
	Size      int64    `json:"size"`
	Layers    int      `json:"layers"`
	Stacks    []string `json:"stacks"`
}
