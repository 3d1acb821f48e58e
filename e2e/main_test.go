// Package e2e holds stack's end-to-end tests: each drives the stack binary
// as a user would (built once by internal/stacktest), with a state
// directory and a cgroup parent of its own, and checks at the end that
// nothing of it is left. One file per subject: cli (commands, help,
// manifest errors), hint (what a user without root is told), supervisor
// (up, down, ps, logs, restarts), network (names, published ports,
// isolation), examples (the examples, the README and the demo).
package e2e

import (
	"os"
	"testing"

	"github.com/stack-containers/stack/internal/stacktest"
	"github.com/stack-containers/stack/internal/testenv"
)

func TestMain(m *testing.M) {
	if udpHelper() {
		return
	}
	code := m.Run()
	stacktest.Cleanup()
	testenv.Cleanup()
	for _, dir := range []string{toolsDir, probeDir} {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
	os.Exit(code)
}
