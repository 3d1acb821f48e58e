package cgroup

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
)

// cfsPeriod is the CFS period in microseconds (the kernel's default);
// the quota is the number of cores times it.
const cfsPeriod = 100000

type v1Driver struct {
	mounts map[string]string
	wait   linux.Backoff
}

// NewV1 returns a driver for cgroup v1, given the mount point of each
// controller (as in Host.V1). Controllers it uses but finds missing are
// skipped unless a limit needs them.
func NewV1(mounts map[string]string) Driver {
	return &v1Driver{mounts: mounts, wait: defaultBackoff()}
}

func (d *v1Driver) Version() int { return 1 }

func (d *v1Driver) Load(path string) Cgroup {
	c := &v1Cgroup{wait: d.wait, dirs: make(map[string]string)}
	c.path, c.err = cleanPath(path)
	// The hierarchies a v1 cgroup is made in: the three that limit, the
	// devices controller, and the freezer that makes Kill race-free.
	for _, ctrl := range []string{"memory", "cpu", "pids", "devices", "freezer"} {
		if m, ok := d.mounts[ctrl]; ok {
			c.dirs[ctrl] = filepath.Join(m, c.path)
		}
	}
	return c
}

// Prune prunes path in every hierarchy the driver uses.
func (d *v1Driver) Prune(path string) error {
	c := d.Load(path).(*v1Cgroup)
	if c.err != nil {
		return c.err
	}
	var errs []error
	for ctrl := range c.dirs {
		errs = append(errs, prune(d.mounts[ctrl], c.path))
	}
	return errors.Join(errs...)
}

func (d *v1Driver) Create(path string, r Resources) (Cgroup, error) {
	c := d.Load(path).(*v1Cgroup)
	if c.err != nil {
		return nil, c.err
	}
	if err := c.require(r); err != nil {
		return nil, err
	}
	made := make(map[string]bool, len(c.dirs))
	for _, dir := range c.uniqueDirs() {
		var err error
		if made[dir], err = makeDir(dir); err != nil {
			return nil, err
		}
	}
	if err := c.set(r, func(ctrl string) bool { return made[c.dirs[ctrl]] }); err != nil {
		return nil, err
	}
	return c, nil
}

type v1Cgroup struct {
	path string
	// err is set when Load was given an invalid path; every method
	// returns it rather than touch a hierarchy's root.
	err error
	// dirs maps each mounted controller to the cgroup's directory in it;
	// controllers mounted together share a directory.
	dirs map[string]string
	wait linux.Backoff
}

func (c *v1Cgroup) Path() string { return c.path }

// uniqueDirs is the cgroup's directory in each hierarchy, each once.
func (c *v1Cgroup) uniqueDirs() []string {
	var dirs []string
	for _, d := range c.dirs {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	return slices.Compact(dirs)
}

// require fails when a limit in r needs a controller that is not mounted.
func (c *v1Cgroup) require(r Resources) error {
	for _, ctrl := range r.controllers() {
		if _, ok := c.dirs[ctrl]; !ok {
			return fmt.Errorf("cgroup: %s: a %s limit needs the v1 %s controller, which is not mounted", c.path, ctrl, ctrl)
		}
	}
	return nil
}

func (c *v1Cgroup) Set(r Resources) error {
	return c.set(r, func(string) bool { return false })
}

// set is Set, told which controllers' directories were made just now
// (fresh): there a limit file holds what the kernel gives every new cgroup,
// whatever its parent's (no memory or memory+swap limit, a CFS period of
// 100 ms and no quota, no pids limit), and writing that value again would
// change nothing. Device rules are always written: a new cgroup inherits
// its parent's list.
func (c *v1Cgroup) set(r Resources, fresh func(ctrl string) bool) error {
	if c.err != nil {
		return c.err
	}
	if err := c.require(r); err != nil {
		return err
	}
	if err := validateDevices(r.Devices); err != nil {
		return err
	}
	if dir, ok := c.dirs["memory"]; ok && (r.Memory > 0 || !fresh("memory")) {
		if err := setMemoryV1(dir, r.Memory, fresh("memory")); err != nil {
			return err
		}
	}
	if dir, ok := c.dirs["cpu"]; ok && (r.CPUs > 0 || !fresh("cpu")) {
		// The period first: the kernel checks the quota against the
		// period in force when the quota is written. A new cgroup's
		// period is already cfsPeriod.
		if !fresh("cpu") {
			if err := writeFile(filepath.Join(dir, "cpu.cfs_period_us"), strconv.Itoa(cfsPeriod)); err != nil {
				return err
			}
		}
		if err := writeFile(filepath.Join(dir, "cpu.cfs_quota_us"), cfsQuota(r.CPUs, "-1")); err != nil {
			return err
		}
	}
	if dir, ok := c.dirs["pids"]; ok && (r.Pids > 0 || !fresh("pids")) {
		if err := writeFile(filepath.Join(dir, "pids.max"), limitOrMax(r.Pids)); err != nil {
			return err
		}
	}
	if r.Devices != nil {
		if err := setDevicesV1(c.dirs["devices"], r.Devices); err != nil {
			return err
		}
	}
	return nil
}

// setMemoryV1 sets the memory limit, and the memory+swap limit to the same
// value where swap accounting exists, so that the cgroup cannot swap its way
// past the limit. The kernel insists on memsw >= limit at every moment, so
// the order depends on the direction: raising writes memsw first, lowering
// writes the plain limit first. In a fresh cgroup memsw is unlimited, so
// any limit lowers it, and it need not be read.
func setMemoryV1(dir string, limit int64, fresh bool) error {
	value, want := "-1", int64(math.MaxInt64)
	if limit > 0 {
		value, want = strconv.FormatInt(limit, 10), limit
	}
	memFile := filepath.Join(dir, "memory.limit_in_bytes")
	swFile := filepath.Join(dir, "memory.memsw.limit_in_bytes")
	if fresh {
		if err := writeFile(memFile, value); err != nil {
			return err
		}
		// Absent without swap accounting.
		return writeIfExists(swFile, value)
	}
	cur, err := readInt(swFile)
	if errors.Is(err, fs.ErrNotExist) {
		// No swap accounting.
		return writeFile(memFile, value)
	}
	if err != nil {
		return err
	}
	order := []string{memFile, swFile}
	if want >= cur {
		order = []string{swFile, memFile}
	}
	for _, f := range order {
		if err := writeFile(f, value); err != nil {
			return err
		}
	}
	return nil
}

// cfsQuota formats the CFS quota for cpus cores per cfsPeriod, or none
// (how the file spells no limit) when cpus is 0.
func cfsQuota(cpus float64, none string) string {
	if cpus > 0 {
		return strconv.FormatInt(int64(math.Round(cpus*cfsPeriod)), 10)
	}
	return none
}

// limitOrMax formats a count limit, zero meaning none.
func limitOrMax(n int64) string {
	if n <= 0 {
		return "max"
	}
	return strconv.FormatInt(n, 10)
}

// AddProc writes pid into every hierarchy; a process belongs to one cgroup
// per hierarchy, so each move is separate.
func (c *v1Cgroup) AddProc(pid int) error {
	if c.err != nil {
		return c.err
	}
	for _, dir := range c.uniqueDirs() {
		if err := writeFile(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

func (c *v1Cgroup) OpenFD() (*os.File, error) { return nil, ErrNoCgroupFD }

// OpenTaskFiles opens the cgroup's tasks file in each hierarchy for
// writing. A thread that writes "0" to one moves itself alone into the
// cgroup there, and the kernel then skips the lock that writing a pid to
// cgroup.procs takes, whose every first taking waits for an RCU grace
// period (milliseconds, tens on a busy machine). A container's init joins
// this way, right before it execs the program that is the container's
// PID 1 from then on: execve ends the init's other threads, and leaves the
// program in exactly the cgroups of the thread that called it.
func (c *v1Cgroup) OpenTaskFiles() ([]*os.File, error) {
	if c.err != nil {
		return nil, c.err
	}
	var files []*os.File
	for _, dir := range c.uniqueDirs() {
		// Opened as in openFile, so that the descriptors, which this
		// process only hands on, never go to the runtime's poller; nor do
		// they turn non-blocking, which os.OpenFile would make them for
		// the child too.
		f, err := openFile(filepath.Join(dir, "tasks"), unix.O_WRONLY)
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, fmt.Errorf("cgroup: open %s: %w", filepath.Join(dir, "tasks"), err)
		}
		files = append(files, os.NewFile(uintptr(f.fd), f.path))
	}
	return files, nil
}

// Procs lists the processes in the cgroup and its descendants, in every
// hierarchy: they are normally the same, but a process moved in one
// hierarchy only still belongs to the cgroup.
func (c *v1Cgroup) Procs() ([]int, error) {
	if c.err != nil {
		return nil, c.err
	}
	return c.procs(false)
}

// procs lists the processes in every hierarchy; skipMissing passes over
// the hierarchies where the cgroup does not exist.
func (c *v1Cgroup) procs(skipMissing bool) ([]int, error) {
	var all []int
	for _, dir := range c.uniqueDirs() {
		pids, err := treeProcs(dir)
		if skipMissing && errors.Is(err, fs.ErrNotExist) && !exists(dir) {
			continue
		}
		if err != nil {
			return nil, err
		}
		all = append(all, pids...)
	}
	slices.Sort(all)
	return slices.Compact(all), nil
}

func (c *v1Cgroup) memoryDir(what string) (string, error) {
	if c.err != nil {
		return "", c.err
	}
	dir, ok := c.dirs["memory"]
	if !ok {
		return "", fmt.Errorf("cgroup: %s: %s needs the v1 memory controller, which is not mounted", c.path, what)
	}
	return dir, nil
}

func (c *v1Cgroup) Stats() (Stats, error) {
	var s Stats
	dir, err := c.memoryDir("memory stats")
	if err != nil {
		return s, err
	}
	usage, err := readInt(filepath.Join(dir, "memory.usage_in_bytes"))
	if err != nil {
		return s, err
	}
	if s.MemoryPeak, err = readInt(filepath.Join(dir, "memory.max_usage_in_bytes")); err != nil {
		return s, err
	}
	if s.MemoryLimit, err = readInt(filepath.Join(dir, "memory.limit_in_bytes")); err != nil {
		return s, err
	}
	if s.MemoryLimit >= unlimited {
		s.MemoryLimit = 0
	}
	stat, err := readKeyed(filepath.Join(dir, "memory.stat"))
	if err != nil {
		return s, err
	}
	s.MemoryUsage = workingSet(usage, stat["total_inactive_file"])
	s.Pids, err = c.Procs()
	return s, err
}

// workingSet is the usage without the inactive page cache, which the kernel
// drops before it comes near an OOM kill; docker stats reports the same.
func workingSet(usage int64, inactiveFile uint64) int64 {
	if uint64(usage) < inactiveFile {
		return 0
	}
	return usage - int64(inactiveFile)
}

func (c *v1Cgroup) OOMKills() (uint64, error) {
	dir, err := c.memoryDir("the OOM-kill count")
	if err != nil {
		return 0, err
	}
	return keyedValue(filepath.Join(dir, "memory.oom_control"), "oom_kill")
}

// OOMEvents registers an eventfd for memory.oom_control in
// cgroup.event_control. The kernel signals it each time the cgroup hits its
// limit and the OOM killer is invoked (an OOM situation, which usually but
// not always ends in a kill: OOMKills is the count), and once more when the
// cgroup is removed.
func (c *v1Cgroup) OOMEvents(ctx context.Context) (<-chan struct{}, error) {
	dir, err := c.memoryDir("OOM events")
	if err != nil {
		return nil, err
	}
	oomFile := filepath.Join(dir, "memory.oom_control")
	oom, err := os.Open(oomFile)
	if err != nil {
		return nil, fmt.Errorf("cgroup: open %s: %w", oomFile, cause(err))
	}
	// The registration takes its own references; the oom_control
	// descriptor is only needed while writing it.
	defer oom.Close()
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("cgroup: eventfd for %s: %w", oomFile, err)
	}
	reg := fmt.Sprintf("%d %d", efd, oom.Fd())
	if err := writeFile(filepath.Join(dir, "cgroup.event_control"), reg); err != nil {
		return nil, errors.Join(err, unix.Close(efd))
	}
	// Non-blocking, so that the runtime poller owns it and Close from
	// another goroutine wakes a pending Read.
	ev := os.NewFile(uintptr(efd), "eventfd:"+oomFile)
	return watchFile(ctx, ev, func(notify func(uint64)) {
		buf := make([]byte, 8)
		for {
			if _, err := ev.Read(buf); err != nil {
				return
			}
			// Removal also signals: tell it apart by the files being gone.
			if _, err := os.Stat(oomFile); errors.Is(err, fs.ErrNotExist) {
				return
			}
			notify(binary.NativeEndian.Uint64(buf))
		}
	}), nil
}

func (c *v1Cgroup) Kill() error {
	if c.err != nil {
		return c.err
	}
	var freeze, thaw func() error
	if dir, ok := c.dirs["freezer"]; ok {
		state := filepath.Join(dir, "freezer.state")
		freeze = func() error { return c.setFreezer(state, "FROZEN") }
		thaw = func() error { return c.setFreezer(state, "THAWED") }
	}
	// A hierarchy the cgroup is not in (any more) holds nothing of it.
	return killAll(c.path, func() ([]int, error) { return c.procs(true) }, freeze, thaw, c.wait)
}

// setFreezer writes state and waits until the kernel reports it: freezing
// is asynchronous and reads FREEZING until every task has stopped.
func (c *v1Cgroup) setFreezer(file, state string) error {
	if err := writeFile(file, state); err != nil {
		return err
	}
	var got string
	done, err := c.wait.Poll(func() (bool, error) {
		b, err := readFile(file)
		got = strings.TrimSpace(string(b))
		return got == state, err
	})
	if err == nil && !done {
		err = fmt.Errorf("cgroup: %s stays %s after %v, want %s", file, got, c.wait.Total, state)
	}
	return err
}

// Destroy removes the cgroup from every hierarchy, going on after a failure
// so that one busy hierarchy does not leave the others behind.
func (c *v1Cgroup) Destroy() error {
	if c.err != nil {
		return c.err
	}
	var errs []error
	for _, dir := range c.uniqueDirs() {
		errs = append(errs, removeTree(dir, c.wait))
	}
	return errors.Join(errs...)
}

// Remove removes the cgroup from every hierarchy where it is empty, and
// falls back on Kill and Destroy at the first where it is not. The
// freezer's directory goes last, so that Kill can still freeze a process
// that some other hierarchy holds; where the cgroup is gone already, Kill
// finds nothing to list and Destroy nothing to remove.
func (c *v1Cgroup) Remove() error {
	if c.err != nil {
		return c.err
	}
	dirs := c.uniqueDirs()
	if f, ok := c.dirs["freezer"]; ok {
		dirs = append(slices.DeleteFunc(dirs, func(d string) bool { return d == f }), f)
	}
	for _, dir := range dirs {
		gone, err := rmdirIfEmpty(dir)
		if err != nil {
			return err
		}
		if !gone {
			return errors.Join(c.Kill(), c.Destroy())
		}
	}
	return nil
}
