// Package kubernetes runs `stack export kubernetes`: it checks the
// options, then checks that the stack can be exported before anything is
// pushed, packs and pushes each rootfs, converts (package kube), prints
// the notes as warnings and writes the objects. The stack CLI runs it in
// its own process when built without the export program, and the export
// program (cmd/stack-export) runs it otherwise.
package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/stack-containers/stack/image"
	"github.com/stack-containers/stack/imagepack"
	"github.com/stack-containers/stack/internal/export"
	"github.com/stack-containers/stack/kube"
	"github.com/stack-containers/stack/manifest"
)

// Check checks the options that need no stack, before the manifest is
// read: a mistake there is a usage error (exit status 2).
func Check(o export.Options) error {
	if o.Namespace != "" {
		if errs := validation.IsDNS1123Label(o.Namespace); len(errs) > 0 {
			return &export.Error{Code: 2, Err: fmt.Errorf("--namespace %q: %s", o.Namespace, errs[0])}
		}
	}
	if o.Registry != "" {
		if _, err := name.NewRepository(o.Registry, name.StrictValidation); err != nil {
			return &export.Error{Code: 2, Err: fmt.Errorf("--image-registry %q: %v", o.Registry, err),
				Hint: "give a repository, such as registry.example/team or 127.0.0.1:5000/team"}
		}
	}
	return nil
}

// Export exports st as o says: the objects go to stdout (or o.Dir), the
// warnings and what was pushed to stderr.
func Export(ctx context.Context, st *manifest.Stack, o export.Options, stdout, stderr io.Writer) error {
	var rootfses []string
	for _, c := range st.Containers {
		if c.Rootfs != "" && !slices.Contains(rootfses, c.Rootfs) {
			rootfses = append(rootfses, c.Rootfs)
		}
	}
	slices.Sort(rootfses)
	opts := kube.Options{Source: o.Source, Namespace: o.Namespace, Images: map[string]string{}}
	if o.Registry != "" {
		// A stand-in for every image: a stack Kubernetes cannot take
		// must fail before anything is pushed.
		for _, r := range rootfses {
			opts.Images[r] = "stand-in"
		}
	}
	for _, c := range st.Containers {
		if c.Image != "" {
			if _, _, ok := registryImage(c.Image, o.DataDir); ok {
				opts.Images[c.Image] = "stand-in"
			}
		}
	}
	if _, err := kube.Convert(st, opts); err != nil {
		return exportError(err, len(rootfses) > 0 && o.Registry == "")
	}
	seen := map[string]string{}
	for _, r := range rootfses {
		repo, err := imagepack.Repository(o.Registry, st.Name, r)
		if err != nil {
			return err
		}
		// Two trees with one base name get two repositories.
		for n := 2; seen[repo.String()] != ""; n++ {
			if repo, err = imagepack.Repository(o.Registry, st.Name, fmt.Sprintf("%s-%d", r, n)); err != nil {
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
		fmt.Fprintf(stderr, "stack: pushed %s as %s\n", r, ref)
	}
	for _, c := range st.Containers {
		if c.Image == "" {
			continue
		}
		ref, cfg, ok := registryImage(c.Image, o.DataDir)
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
		fmt.Fprintf(stderr, "stack: warning: %s\n", n)
	}
	if o.Dir == "-" {
		return ex.Write(stdout)
	}
	files, err := ex.WriteDir(o.Dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "stack: wrote %d objects to %s (kubectl apply -f %s)\n", len(files), o.Dir, o.Dir)
	return nil
}

// registryImage is how the objects name a manifest's image from a
// registry: by the digest stack pulled, where the local store in dataDir
// has it (the tag can move, the digest is what ran), else as written; with
// the image's config when the store has it. An image from a local layout
// or archive is not one: the cluster cannot pull it.
func registryImage(source, dataDir string) (string, image.Config, bool) {
	src, err := image.ParseSource(source, "/")
	if err != nil || src.Kind != image.Registry {
		return "", image.Config{}, false
	}
	// The store is read, never made: an export on a machine that never
	// pulled leaves no STACK_DATA_DIR behind.
	if dataDir == "" {
		return source, image.Config{}, true
	}
	if _, err := os.Stat(filepath.Join(dataDir, "images")); err != nil {
		return source, image.Config{}, true
	}
	store, err := image.Open(dataDir)
	if err != nil {
		return source, image.Config{}, true
	}
	img, err := store.Lookup(src)
	if err != nil {
		return source, image.Config{}, true
	}
	if src.Ref.Digest != "" || img.Digest == "" {
		return source, img.Config, true
	}
	return src.Ref.RepositoryName() + "@" + img.Digest, img.Config, true
}

// exportError is exit status 2 for a stack Kubernetes cannot take as it
// is, with every problem, one per line.
func exportError(err error, noRegistry bool) error {
	var ke *kube.Error
	if !errors.As(err, &ke) {
		return &export.Error{Code: 2, Err: err}
	}
	noun := "problems"
	if len(ke.Problems) == 1 {
		noun = "problem"
	}
	hint := ""
	if noRegistry {
		hint = "give --image-registry REF, a registry the cluster pulls from (such as registry.example/team): each rootfs is pushed there as an image"
	}
	return &export.Error{Code: 2, Err: fmt.Errorf("cannot export to Kubernetes (%d %s):\n%s", len(ke.Problems), noun, strings.TrimSpace(ke.Error())), Hint: hint}
}
