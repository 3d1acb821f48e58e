package e2e

import (
	"testing"

	"github.com/stack-containers/stack/internal/stacktest"
)

// TestE2EDownEndsEveryProcessBeforeItReturns: when down returns, no
// process of the stack lives, whichever way the supervisor stopped it: a
// container with a pid namespace of its own, whose PID 1 the kernel
// discards SIGTERM for, ends with the namespace once PID 1 is killed; one
// without, whose program ignores SIGTERM, has PID 1 killed and its child
// taken by the kill of the cgroup after PID 1's end; one without whose
// program dies of SIGTERM leaves a child that only that kill reaches. Each is checked the moment down
// returns, where AssertNothingLeft would give stragglers time.
func TestE2EDownEndsEveryProcessBeforeItReturns(t *testing.T) {
	e := newEnv(t)
	e.manifest(`
name: every
containers:
  ownns:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "sleep 1000 & sleep 1001 & wait"]
  ignores:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "trap '' TERM; sleep 1000 & exec sleep 1001"]
    namespaces: [mount]
  dies:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "sleep 1000 & exec sleep 1001"]
    namespaces: [mount]
`)
	e.MustRun("up", "-d")
	// sh and two sleeps, then a sleep and the sleep sh became, twice.
	var procs []stacktest.Process
	e.WaitFor("7 processes in the stack's cgroups", func() bool {
		procs = e.CgroupProcesses()
		return len(procs) == 7
	})
	e.MustRun("down")
	for _, p := range procs {
		if p.Alive() {
			t.Errorf("process %d (%s) outlived down", p.Pid, p.Cmdline)
		}
	}
	e.AssertNothingLeft()
}
