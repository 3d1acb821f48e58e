package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/stack-containers/stack/image"
	"github.com/stack-containers/stack/imagepack"
	"github.com/stack-containers/stack/kube"
	"github.com/stack-containers/stack/manifest"
)

func exportCommand() *command {
	return &command{
		name:    "export",
		args:    "kubernetes [-o DIR|-] [--image-registry REF] [--namespace NS] [FILE]",
		summary: "Write Kubernetes objects for the stack",
		help: `Write the stack as Kubernetes objects that an API server accepts as they are:
per container a Deployment (restart: always), a bare Pod (no) or a Job
(on-failure, on-oom), with a headless Service for its name; containers that
join another's namespaces go into that one's Pod. Limits, health checks (as
readiness probes), security context, stop_timeout, env, workdir, entrypoint and
command, ports, named volumes (as PersistentVolumeClaims) and mounts are
carried over.

Whatever Kubernetes has no twin for (on-oom, pids, bind mounts, a stop signal
other than SIGTERM, ...) is a warning on stderr and a "note:" comment above the
object; a name or value Kubernetes would refuse is mapped ('_' becomes '-')
or refused before anything is written or pushed (exit status 2).

A rootfs container's tree is packed into an image, pushed under
--image-registry (REF/STACK/ROOTFS:latest) and named by digest; without the
flag a stack with a rootfs container cannot be exported. Credentials come
from the Docker config; plain HTTP only to localhost and 127.0.0.0/8.

An image: from a registry is named by the digest stack pulled (after
'stack pull'), else by its tag with a warning; one from a local layout or
archive is refused: push it to a registry and name it there.

With -o DIR, each object goes to its own file, DIR/NAME-KIND.yaml; by default
all are printed to stdout as one YAML stream.`,
		setup: func(fs *flag.FlagSet) func(context.Context, *app, []string) error {
			out := fs.String("o", "-", "write one file per object into `DIR`, or - for stdout")
			registry := fs.String("image-registry", "", "push rootfs containers' images under `REF`, such as registry.example/team")
			namespace := fs.String("namespace", "", "put every object in namespace `NS` (default: kubectl's)")
			return func(ctx context.Context, a *app, args []string) error {
				if len(args) == 0 || args[0] != "kubernetes" {
					return usageError("run 'stack help export' for its usage", "export: name the format: stack export kubernetes")
				}
				if *namespace != "" {
					if errs := validation.IsDNS1123Label(*namespace); len(errs) > 0 {
						return usageError("", "--namespace %q: %s", *namespace, errs[0])
					}
				}
				if *registry != "" {
					if _, err := name.NewRepository(*registry, name.StrictValidation); err != nil {
						return usageError("give a repository, such as registry.example/team or 127.0.0.1:5000/team", "--image-registry %q: %v", *registry, err)
					}
				}
				st, err := a.loadStack(args[1:])
				if err != nil {
					return err
				}
				return a.exportKubernetes(ctx, st, exportOptions{dir: *out, registry: *registry, namespace: *namespace, source: a.sourceName(args[1:])})
			}
		},
	}
}

type exportOptions struct {
	dir, registry, namespace, source string
}

// sourceName is the manifest's path as the user gave it, for the output's
// header and the problems.
func (a *app) sourceName(args []string) string {
	if p, err := a.manifestPath(args); err == nil {
		return p
	}
	return ""
}

// exportKubernetes checks that the stack can be exported before anything is
// pushed, then packs and pushes each rootfs, converts, prints the notes as
// warnings and writes the objects.
func (a *app) exportKubernetes(ctx context.Context, st *manifest.Stack, o exportOptions) error {
	var rootfses []string
	for _, c := range st.Containers {
		if c.Rootfs != "" && !slices.Contains(rootfses, c.Rootfs) {
			rootfses = append(rootfses, c.Rootfs)
		}
	}
	slices.Sort(rootfses)
	opts := kube.Options{Source: o.source, Namespace: o.namespace, Images: map[string]string{}}
	if o.registry != "" {
		// A stand-in for every image: a stack Kubernetes cannot take
		// must fail before anything is pushed.
		for _, r := range rootfses {
			opts.Images[r] = "stand-in"
		}
	}
	for _, c := range st.Containers {
		if c.Image != "" {
			if _, _, ok := registryImage(c.Image); ok {
				opts.Images[c.Image] = "stand-in"
			}
		}
	}
	if _, err := kube.Convert(st, opts); err != nil {
		return exportError(err, len(rootfses) > 0 && o.registry == "")
	}
	seen := map[string]string{}
	for _, r := range rootfses {
		repo, err := imagepack.Repository(o.registry, st.Name, r)
		if err != nil {
			return err
		}
		// Two trees with one base name get two repositories.
		for n := 2; seen[repo.String()] != ""; n++ {
			if repo, err = imagepack.Repository(o.registry, st.Name, fmt.Sprintf("%s-%d", r, n)); err != nil {
				return err
			}
		}
		seen[repo.String()] = r
		img, err := imagepack.Image(r)
		if err != nil {
			return err
		}
		ref, err := imagepack.Push(ctx, img, repo)
		if err != nil {
			return err
		}
		opts.Images[r] = ref.String()
		fmt.Fprintf(a.stderr, "stack: pushed %s as %s\n", r, ref)
	}
	for _, c := range st.Containers {
		if c.Image == "" {
			continue
		}
		ref, cfg, ok := registryImage(c.Image)
		if !ok {
			continue
		}
		opts.Images[c.Image] = ref
		// up runs the image's HEALTHCHECK where the manifest has none;
		// Kubernetes ignores it, so it becomes the probe here.
		if h := cfg.Healthcheck; c.Healthcheck == nil && h != nil {
			c.Healthcheck = manifest.ImageHealthcheck(h.Test, h.Interval, h.Timeout, h.StartPeriod, h.StartInterval, h.Retries)
		}
	}
	ex, err := kube.Convert(st, opts)
	if err != nil {
		return exportError(err, false)
	}
	for _, n := range ex.Notes {
		fmt.Fprintf(a.stderr, "stack: warning: %s\n", n)
	}
	if o.dir == "-" {
		return ex.Write(a.stdout)
	}
	files, err := ex.WriteDir(o.dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "stack: wrote %d objects to %s (kubectl apply -f %s)\n", len(files), o.dir, o.dir)
	return nil
}

// registryImage is how the objects name a manifest's image from a
// registry: by the digest stack pulled, where the local store has it (the
// tag can move, the digest is what ran), else as written; with the
// image's config when the store has it. An image from a local layout or
// archive is not one: the cluster cannot pull it.
func registryImage(source string) (string, image.Config, bool) {
	src, err := image.ParseSource(source, "/")
	if err != nil || src.Kind != image.Registry {
		return "", image.Config{}, false
	}
	// The store is read, never made: an export on a machine that never
	// pulled leaves no STACK_DATA_DIR behind.
	dir, err := dataDir()
	if err != nil {
		return source, image.Config{}, true
	}
	if _, err := os.Stat(filepath.Join(dir, "images")); err != nil {
		return source, image.Config{}, true
	}
	store, err := image.Open(dir)
	if err != nil {
		return source, image.Config{}, true
	}
	img, err := store.Lookup(src)
	if err != nil {
		return source, image.Config{}, true
	}
	if _, pinned := src.Ref.(name.Digest); pinned || img.Digest == "" {
		return source, img.Config, true
	}
	return src.Ref.Context().Digest(img.Digest).String(), img.Config, true
}

// exportError is exit status 2 for a stack Kubernetes cannot take as it
// is, with every problem, one per line.
func exportError(err error, noRegistry bool) error {
	var ke *kube.Error
	if !errors.As(err, &ke) {
		return &exitError{code: 2, err: err}
	}
	noun := "problems"
	if len(ke.Problems) == 1 {
		noun = "problem"
	}
	hint := ""
	if noRegistry {
		hint = "give --image-registry REF, a registry the cluster pulls from (such as registry.example/team): each rootfs is pushed there as an image"
	}
	return &exitError{code: 2, err: fmt.Errorf("cannot export to Kubernetes (%d %s):\n%s", len(ke.Problems), noun, strings.TrimSpace(ke.Error())), hint: hint}
}
