// Command stack-init is the init of stack's containers, and of every
// process `stack exec` or a health check starts in one: it sets the
// container up inside its new namespaces and execs the user's program
// (containerinit.MaybeInit). It is not installed: `make build` embeds it
// into the stack binary, which runs it from a sealed memfd. It links only
// package containerinit, the standard library and golang.org/x/sys/unix
// (deps_test.go keeps it so): every package it links would add its
// initialisers and pages to the start of every process of every container.
package main

import (
	"fmt"
	"os"

	"github.com/stack-containers/stack/runtime/containerinit"
)

func main() {
	containerinit.MaybeInit()
	fmt.Fprintln(os.Stderr, "stack-init: error: this is the init of stack's containers, started by stack itself")
	os.Exit(2)
}
