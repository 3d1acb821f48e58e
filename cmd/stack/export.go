package main

import (
	"context"
	"errors"
	"flag"

	"github.com/stack-containers/stack/internal/export"
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
				o := export.Options{Dir: *out, Registry: *registry, Namespace: *namespace, Source: a.sourceName(args[1:])}
				// Without a data directory, images are named as written.
				if dir, err := dataDir(); err == nil {
					o.DataDir = dir
				}
				return exitErrorOf(a.exportKubernetes(ctx, args[1:], o))
			}
		},
	}
}

// sourceName is the manifest's path as the user gave it, for the output's
// header and the problems.
func (a *app) sourceName(args []string) string {
	if p, err := a.manifestPath(args); err == nil {
		return p
	}
	return ""
}

// exitErrorOf is err as stack reports it: an export's *export.Error
// becomes an *exitError with its status and hint.
func exitErrorOf(err error) error {
	var e *export.Error
	if errors.As(err, &e) {
		return &exitError{code: e.Code, err: e.Err, hint: e.Hint}
	}
	return err
}
