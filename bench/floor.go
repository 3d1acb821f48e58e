package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// floorScript makes the container's memory cgroup, joins it, then becomes
// the container: the least any runner must do (a cgroup, new namespaces, a
// private /proc, a changed root). The cgroup is joined before unshare so the
// container's program is charged there from its first page, as a runner
// would arrange.
const floorScript = `mkdir "$1" && echo $$ > "$1/cgroup.procs" && root=$2 && shift 2 &&
exec unshare -fpmui --mount-proc="$root/proc" chroot "$root" "$@"`

// floor is the physical floor: unshare and chroot from a shell, launched
// in parallel, each in a fresh memory cgroup.
type floor struct {
	rootfs string
	// cgroupDir is the harness's own directory in the memory hierarchy.
	cgroupDir string
	cmds      map[string][]*exec.Cmd
}

func newFloor(rootfs, cgroupDir string) *floor {
	return &floor{rootfs: rootfs, cgroupDir: cgroupDir, cmds: map[string][]*exec.Cmd{}}
}

func (f *floor) name() string { return "floor (unshare+chroot)" }

func (f *floor) cgroup(b *batch, i int) string {
	return filepath.Join(f.cgroupDir, "floor-"+b.id+"-"+b.containerName(i))
}

func (f *floor) launch(b *batch) error {
	for i := range b.n {
		args := append([]string{"-c", floorScript, "floor", f.cgroup(b, i), f.rootfs}, b.argv...)
		cmd := exec.Command("/bin/sh", args...)
		// What the shell, unshare or chroot say is how a failed launch
		// explains itself; the container program's own output joins it.
		cmd.Stderr = &strings.Builder{}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("floor: start container %d: %w", i, err)
		}
		f.cmds[b.id] = append(f.cmds[b.id], cmd)
	}
	return nil
}

func (f *floor) start(_ context.Context, b *batch) error { return f.launch(b) }

func (f *floor) run(_ context.Context, b *batch) error {
	if err := f.launch(b); err != nil {
		return err
	}
	var errs error
	for i, cmd := range f.cmds[b.id] {
		if err := cmd.Wait(); err != nil {
			errs = errors.Join(errs, fmt.Errorf("floor: container %d: %w: %s", i, err, strings.TrimSpace(cmd.Stderr.(*strings.Builder).String())))
		}
	}
	delete(f.cmds, b.id)
	return errs
}

// down SIGKILLs what is in each container's cgroup (only processes the
// floor started can be there), reaps the launchers and removes the cgroups.
func (f *floor) down(_ context.Context, b *batch) error {
	var errs error
	for i := range b.n {
		if err := killCgroup(f.cgroup(b, i)); err != nil {
			errs = errors.Join(errs, fmt.Errorf("floor: %w", err))
		}
	}
	for i, cmd := range f.cmds[b.id] {
		// The launchers die of SIGKILL; that is the expected status, and
		// anything on stderr is not.
		_ = cmd.Wait()
		if msg := cmd.Stderr.(*strings.Builder).String(); msg != "" {
			errs = errors.Join(errs, fmt.Errorf("floor: container %d: %s", i, strings.TrimSpace(msg)))
		}
	}
	delete(f.cmds, b.id)
	for i := range b.n {
		if err := os.Remove(f.cgroup(b, i)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = errors.Join(errs, fmt.Errorf("floor: remove cgroup: %w", err))
		}
	}
	return errs
}

// killCgroup SIGKILLs every process of a v1 cgroup until it is empty. A
// process may fork between the read and the kill, and a killed one stays
// listed until it has exited, so it reads again.
func killCgroup(dir string) error {
	for try := range 10000 {
		if try > 0 {
			time.Sleep(time.Millisecond)
		}
		pids, err := cgroupProcs(dir)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("kill pid %d of cgroup %s: %w", pid, dir, err)
			}
		}
	}
	return fmt.Errorf("cgroup %s: processes keep appearing", dir)
}

func cgroupProcs(dir string) ([]int, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, fmt.Errorf("read processes of cgroup %s: %w", dir, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(raw)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("cgroup %s: bad pid %q: %w", dir, f, err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}
