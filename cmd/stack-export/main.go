// Command stack-export is `stack export kubernetes`: it converts a stack
// into Kubernetes objects, pushing its rootfs trees as images. It is not
// installed: `make build` embeds it into the stack binary, which runs it
// from a sealed memfd, so that only export pays for the Kubernetes API
// types (their initialisers cost every process of stack about a
// millisecond at its start; deps_test.go in cmd/stack keeps them out).
// Its options and the stack it exports come from stack on descriptor 3,
// its replies go back on descriptor 4 (package export draws the
// exchange); the objects and warnings go to the stdout and stderr it
// inherits. Its exit status is that of the error it replied, if any.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/stack-containers/stack/internal/export"
	"github.com/stack-containers/stack/internal/export/kubernetes"
	"github.com/stack-containers/stack/manifest"
)

func main() {
	requests := os.NewFile(export.RequestFD, "requests")
	replies := os.NewFile(export.ReplyFD, "replies")
	os.Exit(serve(context.Background(), requests, replies, os.Stdout, os.Stderr))
}

// serve answers the exchange on requests and replies and returns the exit
// status: that of the error it replied, which stack prints; a failure of
// the exchange itself is printed here.
func serve(ctx context.Context, requests io.Reader, replies io.Writer, stdout, stderr io.Writer) int {
	dec := json.NewDecoder(requests)
	enc := json.NewEncoder(replies)
	fail := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "stack-export: error: "+format+"\n", args...)
		return 1
	}
	reply := func(err error) int {
		r := export.ReplyOf(err)
		if encErr := enc.Encode(r); encErr != nil {
			return fail("reply to stack: %v", encErr)
		}
		return r.Code
	}
	var o export.Options
	if err := dec.Decode(&o); err != nil {
		fmt.Fprintf(stderr, "stack-export: error: read the options: %v\nhint: this program is run by stack export\n", err)
		return 2
	}
	if code := reply(kubernetes.Check(o)); code != 0 {
		return code
	}
	var st manifest.Stack
	if err := dec.Decode(&st); err != nil {
		if errors.Is(err, io.EOF) {
			// stack could not load the manifest, and said why itself.
			return 0
		}
		return fail("read the stack: %v", err)
	}
	return reply(kubernetes.Export(ctx, &st, o, stdout, stderr))
}
