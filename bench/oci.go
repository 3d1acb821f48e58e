package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"golang.org/x/sync/errgroup"
)

// ociRuntime runs each container with `RUNTIME run` on an OCI bundle of the
// shared rootfs, all of them at once, the way a script driving runc or crun
// would. Its state lives under the harness's directory (--root).
type ociRuntime struct {
	bin string
	// dir holds the runtime's state (--root), bundles and outputs.
	dir    string
	rootfs string
	// cgroupParent is the harness's cgroup, relative to the hierarchy roots.
	cgroupParent string
	// prefix makes container ids unique on the machine.
	prefix string
	// spec is the runtime's own default config.json (`RUNTIME spec`).
	spec []byte
}

func newOCIRuntime(ctx context.Context, bin, dir, rootfs, cgroupParent, prefix string) (*ociRuntime, error) {
	if _, err := exec.LookPath(bin); err != nil {
		return nil, fmt.Errorf("%s is not installed (make bench-peers)", bin)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%s: make directory: %w", bin, err)
	}
	// The runtime writes its defaults itself, so the containers get what
	// its users get (namespaces, masked paths, capabilities, rlimits).
	if err := command(ctx, filepath.Join(dir, "spec.out"), nil, bin, "spec", "--bundle", dir); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("%s: read default spec: %w", bin, err)
	}
	return &ociRuntime{bin: bin, dir: dir, rootfs: rootfs, cgroupParent: cgroupParent, prefix: prefix, spec: raw}, nil
}

func (o *ociRuntime) name() string { return o.bin + " run" }

func (o *ociRuntime) id(b *batch, i int) string {
	return o.prefix + "-" + b.id + "-" + b.containerName(i)
}

func (o *ociRuntime) bundle(b *batch, i int) string {
	return filepath.Join(o.dir, "bundles", b.id, b.containerName(i))
}

// writeBundles writes one config.json per container (each names its own
// cgroup); the rootfs is shared and read-only, as stack's lower layer is.
func (o *ociRuntime) writeBundles(b *batch) error {
	for i := range b.n {
		// Decoding afresh gives each container its own copy to change.
		var spec map[string]any
		if err := json.Unmarshal(o.spec, &spec); err != nil {
			return fmt.Errorf("%s: decode default spec: %w", o.bin, err)
		}
		process, ok1 := spec["process"].(map[string]any)
		linux, ok2 := spec["linux"].(map[string]any)
		if !ok1 || !ok2 {
			return fmt.Errorf("%s: default spec has no process or linux object", o.bin)
		}
		process["args"] = b.argv
		process["terminal"] = false
		linux["cgroupsPath"] = "/" + o.cgroupParent + "/" + o.bin + "-" + b.id + "-" + b.containerName(i)
		spec["root"] = map[string]any{"path": o.rootfs, "readonly": true}
		spec["hostname"] = b.containerName(i)
		raw, err := json.Marshal(spec)
		if err != nil {
			return fmt.Errorf("%s: encode spec: %w", o.bin, err)
		}
		dir := o.bundle(b, i)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("%s: make bundle: %w", o.bin, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o644); err != nil {
			return fmt.Errorf("%s: write bundle: %w", o.bin, err)
		}
	}
	return nil
}

// each runs fn for every container of b at once.
func each(ctx context.Context, b *batch, fn func(ctx context.Context, i int) error) error {
	g, ctx := errgroup.WithContext(ctx)
	for i := range b.n {
		g.Go(func() error { return fn(ctx, i) })
	}
	return g.Wait()
}

func (o *ociRuntime) runtime(ctx context.Context, b *batch, i int, args ...string) error {
	out := filepath.Join(o.bundle(b, i), "out")
	return command(ctx, out, nil, o.bin, append([]string{"--root", filepath.Join(o.dir, "state")}, args...)...)
}

func (o *ociRuntime) start(ctx context.Context, b *batch) error {
	if err := o.writeBundles(b); err != nil {
		return err
	}
	return each(ctx, b, func(ctx context.Context, i int) error {
		return o.runtime(ctx, b, i, "run", "--detach", "--bundle", o.bundle(b, i), o.id(b, i))
	})
}

func (o *ociRuntime) run(ctx context.Context, b *batch) error {
	if err := o.writeBundles(b); err != nil {
		return err
	}
	return each(ctx, b, func(ctx context.Context, i int) error {
		return o.runtime(ctx, b, i, "run", "--bundle", o.bundle(b, i), o.id(b, i))
	})
}

// down deletes, with --force (SIGKILL), every container that still exists:
// a foreground `run` deletes its container itself when it ends.
func (o *ociRuntime) down(ctx context.Context, b *batch) error {
	err := each(ctx, b, func(ctx context.Context, i int) error {
		if _, err := os.Stat(filepath.Join(o.dir, "state", o.id(b, i))); errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return o.runtime(ctx, b, i, "delete", "--force", o.id(b, i))
	})
	if err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(o.dir, "bundles", b.id)); err != nil {
		return fmt.Errorf("%s: remove bundles: %w", o.bin, err)
	}
	return nil
}
