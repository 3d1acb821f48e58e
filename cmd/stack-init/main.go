// Command stack-init is the init of stack's containers, and of every
// process `stack exec` or a health check starts in one: it sets the
// container up inside its new namespaces and execs the user's program
// (runtime.MaybeInit). It is not installed: `make build` embeds it into
// the stack binary, which runs it from a sealed memfd. It links only the
// runtime package's dependencies, which start in less than half the time
// the whole stack binary takes.
package main

import (
	"fmt"
	"os"

	"github.com/stack-containers/stack/runtime"
)

func main() {
	runtime.MaybeInit()
	fmt.Fprintln(os.Stderr, "stack-init: error: this is the init of stack's containers, started by stack itself")
	os.Exit(2)
}
