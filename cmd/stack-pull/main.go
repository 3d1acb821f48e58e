// Command stack-pull pulls one image into stack's image store. It is not
// installed: `make build` embeds it into the stack binary, which runs it
// from a sealed memfd for every image that `stack pull` or a supervisor
// pulls, so that only a pull pays for the registry client (net/http and
// crypto/tls, go-containerregistry's remote, the Docker config's
// credential helpers, zstd), whose initialisers cost every process of
// stack about a millisecond at its start (deps_test.go in cmd/stack keeps
// them out). The request comes from stack on descriptor 3, the progress
// and the result go back on descriptor 4 (package pullexchange draws the
// exchange); it exits 0 once it has sent the result, whatever it is.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/stack-containers/stack/image/pull"
	"github.com/stack-containers/stack/internal/pullexchange"
)

func main() {
	// A Ctrl-C on the terminal reaches the whole process group: stack
	// decides what it means, and cancels the pull by closing the
	// request's pipe, which lets this program clean up first.
	signal.Ignore(syscall.SIGINT)
	requests := os.NewFile(pullexchange.RequestFD, "request")
	events := os.NewFile(pullexchange.EventFD, "events")
	if err := pullexchange.Serve(context.Background(), requests, events, pull.Image); err != nil {
		fmt.Fprintf(os.Stderr, "stack-pull: error: %v\nhint: this program is run by stack\n", err)
		os.Exit(1)
	}
}
