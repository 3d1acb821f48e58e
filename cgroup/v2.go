package cgroup

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
)

type v2Driver struct {
	root string
	wait linux.Backoff
	// devices holds the device programs loaded for the driver's cgroups.
	devices *devicePrograms
	// shape serialises making cgroups and enabling controllers in
	// ancestors' cgroup.subtree_control (a read, then a write, of
	// directories that concurrent Creates share): the supervisor makes a
	// stack's cgroups several at once.
	shape *sync.Mutex
}

// NewV2 returns a driver for the cgroup2 hierarchy mounted at root.
func NewV2(root string) Driver {
	return &v2Driver{root: root, wait: defaultBackoff(), devices: &devicePrograms{}, shape: &sync.Mutex{}}
}

func (d *v2Driver) Version() int { return 2 }

func (d *v2Driver) Load(path string) Cgroup {
	c := &v2Cgroup{root: d.root, wait: d.wait, devices: d.devices, shape: d.shape}
	c.path, c.err = cleanPath(path)
	c.dir = filepath.Join(d.root, c.path)
	return c
}

func (d *v2Driver) Prune(path string) error {
	c := d.Load(path).(*v2Cgroup)
	if c.err != nil {
		return c.err
	}
	return prune(d.root, c.path)
}

func (d *v2Driver) Create(path string, r Resources) (Cgroup, error) {
	c := d.Load(path).(*v2Cgroup)
	if c.err != nil {
		return nil, c.err
	}
	c.shape.Lock()
	made, err := makeDir(c.dir)
	c.shape.Unlock()
	if err != nil {
		return nil, err
	}
	if err := c.set(r, made); err != nil {
		return nil, err
	}
	return c, nil
}

type v2Cgroup struct {
	root, path, dir string
	// err is set when Load was given an invalid path; every method
	// returns it rather than touch the hierarchy's root.
	err     error
	wait    linux.Backoff
	devices *devicePrograms
	shape   *sync.Mutex
}

func (c *v2Cgroup) Path() string { return c.path }

// OpenDir opens the cgroup's directory, for a clone that places the new
// process in it (CLONE_INTO_CGROUP): the process is in the cgroup from its
// first instruction, without a move by pid.
func (c *v2Cgroup) OpenDir() (*os.File, error) {
	if c.err != nil {
		return nil, c.err
	}
	f, err := os.OpenFile(c.dir, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", c.path, err)
	}
	return f, nil
}

func (c *v2Cgroup) file(name string) string { return filepath.Join(c.dir, name) }

// controllers reads a space-separated controller list such as
// cgroup.controllers.
func controllers(path string) ([]string, error) {
	b, err := readFile(path)
	return strings.Fields(string(b)), err
}

// enable makes the controllers available to the cgroup by enabling them in
// cgroup.subtree_control of each ancestor, from the root down: the kernel
// lets a cgroup enable only what its own parent has enabled for it. A
// controller in need must be offered; one only wanted is skipped where the
// hierarchy does not offer it.
func (c *v2Cgroup) enable(need, want []string) error {
	c.shape.Lock()
	defer c.shape.Unlock()
	want = slices.Clone(want)
	dir := c.root
	for _, elem := range strings.Split(c.path, "/") {
		offered, err := controllers(filepath.Join(dir, "cgroup.controllers"))
		if err != nil {
			return err
		}
		enabled, err := controllers(filepath.Join(dir, "cgroup.subtree_control"))
		if err != nil {
			return err
		}
		var add []string
		for _, ctrl := range slices.Clone(want) {
			switch {
			case !slices.Contains(offered, ctrl) && slices.Contains(need, ctrl):
				return fmt.Errorf("cgroup: %s: a %s limit needs the %s controller, which %s does not offer (cgroup.controllers: %q)",
					c.path, ctrl, ctrl, dir, strings.Join(offered, " "))
			case !slices.Contains(offered, ctrl):
				want = slices.DeleteFunc(want, func(s string) bool { return s == ctrl })
			case !slices.Contains(enabled, ctrl):
				add = append(add, "+"+ctrl)
			}
		}
		// One write for all: the kernel takes a list, and applies it whole
		// or not at all.
		if len(add) > 0 {
			if err := writeFile(filepath.Join(dir, "cgroup.subtree_control"), strings.Join(add, " ")); err != nil {
				return err
			}
		}
		dir = filepath.Join(dir, elem)
	}
	return nil
}

// Set enables the controllers r needs, and memory wherever the hierarchy
// offers it (for Stats and the OOM-kill count even without a limit), then
// writes every limit; a zero field clears its limit where the controller is
// enabled.
func (c *v2Cgroup) Set(r Resources) error { return c.set(r, false) }

// set is Set, told whether the cgroup's directory was made just now
// (fresh): then its files hold what the kernel gives every new cgroup (no
// memory or swap limit, cpu.max "max 100000", no pids limit, no group OOM
// kill), and a limit of that value need not be written.
func (c *v2Cgroup) set(r Resources, fresh bool) error {
	if c.err != nil {
		return c.err
	}
	if err := validateDevices(r.Devices); err != nil {
		return err
	}
	// v2 has no devices controller: a program attached to the cgroup
	// does its work.
	need := slices.DeleteFunc(r.controllers(), func(ctrl string) bool { return ctrl == "devices" })
	want := need
	if !slices.Contains(want, "memory") {
		want = append([]string{"memory"}, need...)
	}
	if err := c.enable(need, want); err != nil {
		return err
	}
	swap := "max"
	if r.Memory > 0 {
		swap = "0"
	}
	writes := []struct {
		file, value string
		required    bool
		// kernel: value is what the kernel gives a new cgroup.
		kernel bool
	}{
		{"memory.max", limitOrMax(r.Memory), r.Memory > 0, r.Memory <= 0},
		// No swap on top of a limit, as on v1 with memsw = limit.
		{"memory.swap.max", swap, false, r.Memory <= 0},
		// An OOM kill takes the whole container down rather than leave
		// it running without the process the kernel chose.
		{"memory.oom.group", "1", false, false},
		{"cpu.max", cpuMax(r.CPUs), r.CPUs > 0, r.CPUs <= 0},
		{"pids.max", limitOrMax(r.Pids), r.Pids > 0, r.Pids <= 0},
	}
	for _, w := range writes {
		if fresh && w.kernel {
			continue
		}
		write := writeIfExists
		if w.required {
			write = writeFile
		}
		if err := write(c.file(w.file), w.value); err != nil {
			return err
		}
	}
	if r.Devices != nil {
		return setDevicesV2(c.dir, c.devices, r.Devices)
	}
	return nil
}

// cpuMax formats cpu.max: "$QUOTA $PERIOD", the quota "max" for none.
func cpuMax(cpus float64) string {
	return cfsQuota(cpus, "max") + " " + strconv.Itoa(cfsPeriod)
}

func (c *v2Cgroup) AddProc(pid int) error {
	if c.err != nil {
		return c.err
	}
	return writeFile(c.file("cgroup.procs"), strconv.Itoa(pid))
}

// OpenFD opens the cgroup directory for clone3(CLONE_INTO_CGROUP), which
// places the child in the cgroup before it runs a single instruction, so
// that nothing it does is charged elsewhere.
func (c *v2Cgroup) OpenFD() (*os.File, error) {
	if c.err != nil {
		return nil, c.err
	}
	f, err := os.OpenFile(c.dir, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return nil, fmt.Errorf("cgroup: open %s: %w", c.dir, cause(err))
	}
	return f, nil
}

func (c *v2Cgroup) Procs() ([]int, error) {
	if c.err != nil {
		return nil, c.err
	}
	return treeProcs(c.dir)
}

// hasMemory tells whether the memory controller is enabled for the cgroup;
// it is an error only if the cgroup cannot be read.
func (c *v2Cgroup) hasMemory() (bool, error) {
	if c.err != nil {
		return false, c.err
	}
	ctrls, err := controllers(c.file("cgroup.controllers"))
	return slices.Contains(ctrls, "memory"), err
}

// Stats reports zero memory figures where the memory controller is not
// enabled: without it the kernel does no accounting for the cgroup.
func (c *v2Cgroup) Stats() (Stats, error) {
	var s Stats
	mem, err := c.hasMemory()
	if err != nil {
		return s, err
	}
	if mem {
		if err := c.memoryStats(&s); err != nil {
			return s, err
		}
	}
	s.Pids, err = c.Procs()
	return s, err
}

func (c *v2Cgroup) memoryStats(s *Stats) error {
	usage, err := readInt(c.file("memory.current"))
	if err != nil {
		return err
	}
	// memory.peak came in Linux 5.19.
	if exists(c.file("memory.peak")) {
		if s.MemoryPeak, err = readInt(c.file("memory.peak")); err != nil {
			return err
		}
	}
	if s.MemoryLimit, err = readInt(c.file("memory.max")); err != nil {
		return err
	}
	s.MemoryLimit = max(s.MemoryLimit, 0)
	stat, err := readKeyed(c.file("memory.stat"))
	if err != nil {
		return err
	}
	s.MemoryUsage = workingSet(usage, stat["inactive_file"])
	return nil
}

// OOMKills counts the OOM killer's kills of the cgroup from memory.events,
// never oom, which counts the times the cgroup hit its limit (that need not
// end in a kill). Without the memory controller the cgroup has no limit of
// its own to hit, and the count is 0.
func (c *v2Cgroup) OOMKills() (uint64, error) {
	mem, err := c.hasMemory()
	if err != nil || !mem {
		return 0, err
	}
	return c.oomKillCount()
}

// oomKillCount is OOMKills for a cgroup known to have the memory controller.
// With memory.oom.group on, one OOM kills the whole cgroup and oom_kill
// counts every process taken, the chosen victim twice (one OOM of one
// process reads oom_kill 2, oom_group_kill 1), so there oom_group_kill is
// the count. Without the group setting, or on a kernel without the key,
// every kill is one OOM kill and oom_kill is the count.
func (c *v2Cgroup) oomKillCount() (uint64, error) {
	events, err := readKeyed(c.file("memory.events"))
	if err != nil {
		return 0, err
	}
	if groupKills, ok := events["oom_group_kill"]; ok {
		group, err := readInt(c.file("memory.oom.group"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, err
		}
		if group == 1 {
			return groupKills, nil
		}
	}
	kills, ok := events["oom_kill"]
	if !ok {
		return 0, fmt.Errorf("cgroup: %s has no %q line", c.file("memory.events"), "oom_kill")
	}
	return kills, nil
}

// inotify event layout (inotify(7)): wd, mask, cookie, len, then len bytes
// of name.
const inotifyEventSize = 16

// OOMEvents watches memory.events with inotify: the kernel signals a
// modification when a counter in it changes. It sends once per OOM kill
// (oomKillCount), and ends when ctx ends or the cgroup is removed, as on v1.
// It does not end when the cgroup empties: kernfs sends its change notices
// from a workqueue, so a notice of an earlier process leaving could arrive
// after the watch began and read as the end of a process that had not yet
// joined, and a container's cgroup empties between its runs.
func (c *v2Cgroup) OOMEvents(ctx context.Context) (<-chan struct{}, error) {
	mem, err := c.hasMemory()
	if err != nil {
		return nil, err
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("cgroup: inotify for %s: %w", c.dir, err)
	}
	// Removing a cgroup sends nothing to watches on its own files or
	// directory (kernfs keeps the inodes alive); only the parent
	// directory hears of it, as the deletion of an entry.
	parentWd, err := unix.InotifyAddWatch(fd, filepath.Dir(c.dir), unix.IN_DELETE|unix.IN_DELETE_SELF|unix.IN_ONLYDIR)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("cgroup: watch %s: %w", filepath.Dir(c.dir), err), unix.Close(fd))
	}
	base := filepath.Base(c.dir)
	memWd, last := -1, uint64(0)
	if mem {
		memWd, err = unix.InotifyAddWatch(fd, c.file("memory.events"), unix.IN_MODIFY)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("cgroup: watch %s: %w", c.file("memory.events"), err), unix.Close(fd))
		}
		// Only kills from now on are news; reading after the watch is in
		// place means none can fall between the two.
		if last, err = c.oomKillCount(); err != nil {
			return nil, errors.Join(err, unix.Close(fd))
		}
	}
	// Non-blocking, so that the runtime poller owns it and Close from
	// another goroutine wakes a pending Read.
	in := os.NewFile(uintptr(fd), "inotify:"+c.dir)
	return watchFile(ctx, in, func(notify func(uint64)) {
		// Read failures here end nothing: the kernel rewrites these files
		// whole, so a failed read can only be a cgroup on its way out, and
		// the watch on the parent reports that removal.
		checkKills := func() {
			if memWd < 0 {
				return
			}
			n, err := c.oomKillCount()
			if err == nil && n > last {
				notify(n - last)
				last = n
			}
		}
		buf := make([]byte, 64*inotifyEventSize)
		for {
			n, err := in.Read(buf)
			if err != nil {
				return
			}
			memChanged := false
			for off := 0; off+inotifyEventSize <= n; {
				wd := int(int32(binary.NativeEndian.Uint32(buf[off:])))
				mask := binary.NativeEndian.Uint32(buf[off+4:])
				nameLen := int(binary.NativeEndian.Uint32(buf[off+12:]))
				name := string(bytes.TrimRight(buf[off+inotifyEventSize:off+inotifyEventSize+nameLen], "\x00"))
				off += inotifyEventSize + nameLen
				removed := wd == parentWd && (mask&unix.IN_DELETE_SELF != 0 || name == base)
				if removed || mask&unix.IN_IGNORED != 0 {
					// A kill just before the removal is still news.
					checkKills()
					return
				}
				memChanged = memChanged || wd == memWd
			}
			if memChanged {
				checkKills()
			}
		}
	}), nil
}

func (c *v2Cgroup) Kill() error {
	if c.err != nil {
		return c.err
	}
	if _, err := os.Stat(c.dir); errors.Is(err, fs.ErrNotExist) {
		// A cgroup that is not there holds nothing.
		return nil
	}
	// An empty cgroup is left alone: the usual case, a container whose
	// PID 1 took its pid namespace with it.
	if populated, err := c.populated(); err == nil && !populated {
		return nil
	}
	// Not cgroup.kill: the cgroup stays in use (a restart clones its next
	// run into it), and on some kernels every child cloned into a cgroup
	// (CLONE_INTO_CGROUP) after a write to its cgroup.kill gets SIGKILL at
	// birth: seen on Debian's 6.1.0-48 cloud kernel, whose fork seems to
	// compare the cgroup's kill count with the one it noted for the
	// clone, apparently the parent's. Frozen, nothing in it can fork
	// while it is signalled either.
	return c.killBySignals()
}

// killForRemoval empties a cgroup that is about to be removed: through
// cgroup.kill (Linux 5.14), which kills the whole subtree in the kernel,
// atomically with respect to forks, since nothing is cloned into it
// again; by signals where it is missing.
func (c *v2Cgroup) killForRemoval() error {
	if !exists(c.file("cgroup.kill")) {
		return c.killBySignals()
	}
	if err := writeFile(c.file("cgroup.kill"), "1"); err != nil {
		return err
	}
	return c.waitEvent("populated", 0)
}

// populated reads whether the cgroup or one below it holds a process.
func (c *v2Cgroup) populated() (bool, error) {
	file := c.file("cgroup.events")
	data, err := readFile(file)
	if err != nil {
		return false, err
	}
	m, err := parseKeyed(file, data)
	if err != nil {
		return false, err
	}
	n, ok := m["populated"]
	if !ok {
		return false, fmt.Errorf("cgroup: %s has no \"populated\" line", file)
	}
	return n != 0, nil
}

// killBySignals is Kill for kernels without cgroup.kill.
func (c *v2Cgroup) killBySignals() error {
	var freeze, thaw func() error
	// cgroup.freeze came in Linux 5.2.
	if exists(c.file("cgroup.freeze")) {
		freeze = func() error { return c.setFrozen(1) }
		thaw = func() error { return c.setFrozen(0) }
	}
	return killAll(c.path, c.Procs, freeze, thaw, c.wait)
}

func (c *v2Cgroup) setFrozen(v uint64) error {
	if err := writeFile(c.file("cgroup.freeze"), strconv.FormatUint(v, 10)); err != nil {
		return err
	}
	return c.waitEvent("frozen", v)
}

func (c *v2Cgroup) Destroy() error {
	if c.err != nil {
		return c.err
	}
	return removeTree(c.dir, c.wait)
}

func (c *v2Cgroup) Remove() error {
	if c.err != nil {
		return c.err
	}
	if gone, err := rmdirIfEmpty(c.dir); gone || err != nil {
		return err
	}
	return errors.Join(c.killForRemoval(), c.Destroy())
}
