package stacktest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/stack-containers/stack/cgroup"
	"github.com/stack-containers/stack/internal/linux"
)

// AssertNothingLeft fails the test for every process, cgroup, mount and
// state entry of the Env that remains.
func (e *Env) AssertNothingLeft() {
	e.t.Helper()
	// A process killed a moment ago may still be on its way out.
	for _, l := range e.leftovers(10 * time.Second) {
		e.t.Errorf("left behind: %s", l)
	}
}

// DownLeavingNothing runs `stack down`, which must succeed, and asserts
// that nothing of the Env is left: the tail of most end-to-end tests.
func (e *Env) DownLeavingNothing(args ...string) Result {
	e.t.Helper()
	r := e.MustRun(append([]string{"down"}, args...)...)
	e.AssertNothingLeft()
	return r
}

// leftovers describes what of the Env remains, one entry a thing, once its
// processes have had up to settle to end.
func (e *Env) leftovers(settle time.Duration) []string {
	var left []string
	for _, p := range e.waitProcesses(settle) {
		left = append(left, fmt.Sprintf("process %d (%s)", p.Pid, p.Cmdline))
	}
	for _, cg := range e.LeftCgroups() {
		left = append(left, "cgroup "+cg)
	}
	for _, m := range e.leftMounts() {
		left = append(left, "mount "+m.line)
	}
	for _, s := range e.leftState() {
		left = append(left, "state "+s)
	}
	left = append(left, e.net.leftovers()...)
	return left
}

// finish runs when the test ends: it asserts that nothing is left, then
// removes what is, so that later tests and runs start clean.
// Marked a helper, its failures point at the test's call of New.
func (e *Env) finish() {
	e.t.Helper()
	e.AssertNothingLeft()
	e.removeLeftovers()
	// Its devices and rules go with it.
	e.net.close()
}

// removeLeftovers kills the Env's processes, detaches its mounts and
// removes its cgroups. Processes go first, since a cgroup that holds one
// cannot be removed; mounts are detached before the test's temporary
// directories that hold them are removed (their cleanup runs after this).
func (e *Env) removeLeftovers() {
	e.t.Helper()
	for _, p := range e.Processes() {
		if err := syscall.Kill(p.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			e.t.Errorf("kill leftover process %d: %v", p.Pid, err)
		}
	}
	if procs := e.waitProcesses(10 * time.Second); len(procs) > 0 {
		e.t.Errorf("leftover processes %v outlived SIGKILL", procs)
	}
	mounts := e.leftMounts()
	// Deepest first: a mount below another keeps the upper one busy.
	slices.SortFunc(mounts, func(a, b mount) int { return strings.Compare(b.point, a.point) })
	for _, m := range mounts {
		if err := syscall.Unmount(m.point, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			e.t.Errorf("unmount leftover %s: %v", m.point, err)
		}
	}
	// Deepest first: cgroupfs refuses to remove a cgroup with children.
	for _, cg := range slices.Backward(e.LeftCgroups()) {
		if err := cgroup.RemoveTree(cg); err != nil {
			e.t.Errorf("remove leftover cgroup %s: %v", cg, err)
		}
	}
}

// Process is a live process of the Env, with its start time, so that a
// pid reused later is not taken for it, and its command line, read while
// it ran.
type Process struct {
	Pid     int
	Start   uint64
	Cmdline string
}

// Alive tells whether p still runs: its pid names the process listed,
// which is not a zombie.
func (p Process) Alive() bool {
	st, err := linux.ReadStat(p.Pid)
	return err == nil && st.Start == p.Start && st.State != 'Z'
}

// CgroupProcesses lists the live processes in the Env's cgroups: the
// containers', without the CLI or a supervisor.
func (e *Env) CgroupProcesses() []Process {
	return e.listProcesses(e.inCgroups)
}

// Processes lists the live processes of the Env: started with its state
// directory in their environment (every process stack starts inherits it:
// the CLI, a detached supervisor, a container's init until it execs the
// user's program; and a script a test runs with Environ), or sitting in
// one of its cgroups. The stack binary alone tells nothing: other Envs of
// the test binary run it too.
func (e *Env) Processes() []Process {
	return e.listProcesses(func(pid int) bool { return e.inCgroups(pid) || e.inEnviron(pid) })
}

// listProcesses lists the live processes, the test's own aside, that owns
// says are the Env's. A read of /proc/PID fails only when the process has
// just ended (the test runs as root), which makes it no one's.
func (e *Env) listProcesses(owns func(pid int) bool) []Process {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		e.t.Fatalf("stacktest: list processes: %v", err)
	}
	var procs []Process
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() || !owns(pid) {
			continue
		}
		st, err := linux.ReadStat(pid)
		// A zombie holds nothing but its pid, and is its parent's to reap.
		if err != nil || st.State == 'Z' {
			continue
		}
		procs = append(procs, Process{Pid: pid, Start: st.Start, Cmdline: cmdline(pid)})
	}
	return procs
}

// waitProcesses waits up to timeout for the Env's processes to end, and
// returns those that have not.
func (e *Env) waitProcesses(timeout time.Duration) []Process {
	deadline := time.Now().Add(timeout)
	for {
		procs := e.Processes()
		if len(procs) == 0 || time.Now().After(deadline) {
			return procs
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// inCgroups tells whether pid sits in one of the Env's cgroups.
func (e *Env) inCgroups(pid int) bool {
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return false
	}
	// Each line is hierarchy-ID:controllers:path.
	for _, line := range strings.Split(string(cg), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && underDir(parts[2], "/"+e.CgroupParent) {
			return true
		}
	}
	return false
}

// inEnviron tells whether pid has the Env's state directory in its
// environment.
func (e *Env) inEnviron(pid int) bool {
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	return err == nil && slices.Contains(strings.Split(string(environ), "\x00"), "STACK_STATE_DIR="+e.StateDir)
}

// cmdline describes a process for a message; a process that has just ended
// is described by nothing.
func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
}

// hierarchies are the mount points of every cgroup hierarchy, each once.
func (e *Env) hierarchies() []string {
	var dirs []string
	for _, m := range e.host.V1 {
		dirs = append(dirs, m)
	}
	if e.host.V2 != "" {
		dirs = append(dirs, e.host.V2)
	}
	slices.Sort(dirs)
	return slices.Compact(dirs)
}

// LeftCgroups lists the Env's cgroup parent and the cgroups under it that
// exist, in every hierarchy, parents first. stack makes the parent, and
// removes it once no stack uses it, so it is a leftover too.
func (e *Env) LeftCgroups() []string {
	var left []string
	for _, h := range e.hierarchies() {
		err := filepath.WalkDir(filepath.Join(h, e.CgroupParent), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				left = append(left, p)
			}
			return err
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			e.t.Errorf("stacktest: list cgroups: %v", err)
		}
	}
	return left
}

// mount is a line of /proc/self/mountinfo and the mount point it gives.
type mount struct {
	line  string
	point string
}

// leftMounts lists the mounts of the test's mount namespace that name one
// of the Env's directories, as their root, mount point or source (an
// overlay's options name its layers, but its mount point lies in the state
// directory).
func (e *Env) leftMounts() []mount {
	mounts, err := linux.Mounts()
	if err != nil {
		e.t.Fatalf("stacktest: %v", err)
	}
	var left []mount
	for _, m := range mounts {
		named := []string{m.Root, m.Point, m.Source}
		for _, dir := range []string{e.StateDir, e.Dir} {
			if slices.ContainsFunc(named, func(p string) bool { return underDir(p, dir) }) {
				left = append(left, mount{line: m.Line, point: m.Point})
				break
			}
		}
	}
	return left
}

// underDir tells whether p is dir or lies below it.
func underDir(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// leftState lists the entries of the state directory. The image store,
// which outlives the stacks by design, is in the data directory.
func (e *Env) leftState() []string {
	entries, err := os.ReadDir(e.StateDir)
	if err != nil {
		e.t.Errorf("stacktest: read state directory: %v", err)
	}
	var left []string
	for _, ent := range entries {
		left = append(left, filepath.Join(e.StateDir, ent.Name()))
	}
	return left
}
