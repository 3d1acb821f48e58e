package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stack-containers/stack/internal/linux"
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
	var procs []identity
	e.WaitFor("7 processes in the stack's cgroups", func() bool {
		procs = stackProcesses(t, e.Env)
		return len(procs) == 7
	})
	e.MustRun("down")
	for _, p := range procs {
		if p.alive() {
			t.Errorf("process %d (%s) outlived down", p.pid, p.cmdline)
		}
	}
	e.AssertNothingLeft()
}

// identity is a process with its start time, so that a pid reused after
// down is not taken for the process that had it.
type identity struct {
	pid     int
	start   uint64
	cmdline string
}

func (p identity) alive() bool {
	st, err := linux.ReadStat(p.pid)
	return err == nil && st.Start == p.start && st.State != 'Z'
}

// stackProcesses lists the live processes in e's cgroups.
func stackProcesses(t *testing.T, e *stacktest.Env) []identity {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var procs []identity
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if err != nil || !strings.Contains(string(cg), "/"+e.CgroupParent+"/") {
			continue
		}
		st, err := linux.ReadStat(pid)
		if err != nil || st.State == 'Z' {
			continue
		}
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		procs = append(procs, identity{pid: pid, start: st.Start, cmdline: strings.ReplaceAll(string(cmd), "\x00", " ")})
	}
	return procs
}
