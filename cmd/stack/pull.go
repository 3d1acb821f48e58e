package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/stack-containers/stack/image"
	"github.com/stack-containers/stack/supervisor"
)

func pullCommand() *command {
	return &command{
		name:    "pull",
		args:    "[CONTAINER...]",
		summary: "Fetch the stack's images into the local store",
		help: `Fetch the images of the stack's containers (or of the named ones) into the
local store (STACK_DATA_DIR/images) without starting anything, each image
once and all of them side by side, whatever their pull_policy; the layers
the store already holds are not fetched again. On a terminal every layer's
progress is shown; otherwise one line per image once it is in the store.

An image that cannot be had is exit status 1, naming the container, the
image and the registry's reason.`,
		setup: func(fs *flag.FlagSet) func(context.Context, *app, []string) error {
			return func(ctx context.Context, a *app, args []string) error {
				st, err := a.loadStack(nil)
				if err != nil {
					return err
				}
				for _, name := range args {
					if st.Containers[name] == nil {
						return usageError("", "pull: stack %q has no container %q", st.Name, name)
					}
				}
				cfg, err := a.supervisorConfig()
				if err != nil {
					return err
				}
				var progress func(image.Progress)
				if f, ok := a.stdout.(*os.File); ok && isTerminal(f) {
					p := &layerProgress{w: a.stdout, start: time.Now()}
					progress = p.update
				}
				imgs, err := supervisor.PullImages(ctx, st, cfg, args, progress)
				if err != nil {
					return err
				}
				for _, img := range imgs {
					fmt.Fprintf(a.stdout, "%s: %s, %d layers, %s\n", img.Reference, shortID(img.ID), len(img.Layers), supervisor.FormatBytes(img.Size))
				}
				return nil
			}
		},
	}
}

// shortID is an image ID as docker images shows it: 12 hex digits.
func shortID(id string) string {
	hex := strings.TrimPrefix(id, "sha256:")
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return hex
}

// layerProgress draws one line per layer of every image being pulled,
// redrawn in place as they advance.
type layerProgress struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
	keys  []string
	lines map[string]string
	drawn int
}

func (p *layerProgress) update(ev image.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lines == nil {
		p.lines = map[string]string{}
	}
	key := ev.Image + " " + ev.Layer
	if _, ok := p.lines[key]; !ok {
		p.keys = append(p.keys, key)
	}
	layer := shortID(ev.Layer)
	var state string
	switch ev.State {
	case image.LayerWaiting:
		state = "waiting for another pull"
	case image.LayerExists:
		state = "already in the store"
	case image.LayerDone:
		state = "done"
	case image.LayerFetching:
		secs := time.Since(p.start).Seconds()
		speed := ""
		if secs > 0 {
			speed = ", " + supervisor.FormatBytes(int64(float64(ev.Done)/secs)) + "/s"
		}
		if ev.Total > 0 {
			state = fmt.Sprintf("%s of %s%s", supervisor.FormatBytes(ev.Done), supervisor.FormatBytes(ev.Total), speed)
		} else {
			state = supervisor.FormatBytes(ev.Done) + speed
		}
	}
	p.lines[key] = fmt.Sprintf("%s layer %d/%d %s: %s", ev.Image, ev.Index+1, ev.Count, layer, state)
	// Back to the first line drawn, then every line again.
	if p.drawn > 0 {
		fmt.Fprintf(p.w, "\033[%dA", p.drawn)
	}
	for _, k := range p.keys {
		fmt.Fprintf(p.w, "\r\033[K%s\n", p.lines[k])
	}
	p.drawn = len(p.keys)
}
