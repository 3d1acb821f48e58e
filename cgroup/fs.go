package cgroup

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
	"time"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
)

// unlimited is the smallest value a v1 limit file reports when no limit is
// set: the kernel rounds LLONG_MAX down to a page, so "-1" reads back as
// 9223372036854771712. Anything at or above 2^62 is no limit in practice.
const unlimited = 1 << 62

// cause strips the *PathError that os adds, so that our own message can name
// the file once and the value written.
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// writeFile writes value to an existing cgroup file in a single write, as
// the kernel parses each write(2) on its own. It never creates the file: on
// cgroupfs only the kernel does.
func writeFile(path, value string) error {
	f, err := openFile(path, unix.O_WRONLY|unix.O_TRUNC)
	if err != nil {
		return fmt.Errorf("cgroup: write %q to %s: %w", value, path, err)
	}
	defer f.close()
	return f.write(value)
}

// file is a cgroup file opened with open(2) itself rather than os.Open,
// which would hand the descriptor to the Go runtime's poller (cgroupfs
// files can be polled, so each open would cost an epoll_ctl to add it and
// one to remove it again) and give it a finalizer: a container's start
// writes some twenty of them.
type file struct {
	fd   int
	path string
}

func openFile(path string, flags int) (file, error) {
	fd, err := linux.IgnoringEINTRN(func() (int, error) { return unix.Open(path, flags|unix.O_CLOEXEC, 0) })
	if err != nil {
		return file{fd: -1}, err
	}
	return file{fd: fd, path: path}, nil
}

// write writes value in one write(2): the kernel parses each on its own.
func (f file) write(value string) error {
	_, err := linux.IgnoringEINTRN(func() (int, error) { return unix.Write(f.fd, []byte(value)) })
	if err != nil {
		return fmt.Errorf("cgroup: write %q to %s: %w", value, f.path, err)
	}
	return nil
}

func (f file) close() { unix.Close(f.fd) }

// writeIfExists writes value to path unless the file is absent, which is how
// the kernel says a feature (swap accounting, a newer knob) is not there.
// The open tells, without a stat first.
func writeIfExists(path, value string) error {
	err := writeFile(path, value)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// makeDir makes the cgroup directory dir, with its parents, and reports
// whether this call made dir itself: only then does it hold what the kernel
// gives a new cgroup, whatever an earlier run left in one of the same name.
// One mkdir(2) in the common case, where the parent exists; os.MkdirAll
// would stat dir and its parent first.
func makeDir(dir string) (made bool, err error) {
	mkdir := func() error {
		return linux.IgnoringEINTR(func() error { return unix.Mkdir(dir, 0o755) })
	}
	err = mkdir()
	if errors.Is(err, unix.ENOENT) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return false, fmt.Errorf("cgroup: create %s: %w", dir, cause(err))
		}
		err = mkdir()
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EEXIST):
		// Made by an earlier run or a concurrent Create: as MkdirAll,
		// fine if it is a directory.
		if st, serr := os.Stat(dir); serr != nil || !st.IsDir() {
			return false, fmt.Errorf("cgroup: create %s: %w", dir, err)
		}
		return false, nil
	}
	return false, fmt.Errorf("cgroup: create %s: %w", dir, err)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func readFile(path string) ([]byte, error) {
	f, err := openFile(path, unix.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("cgroup: read %s: %w", path, err)
	}
	defer f.close()
	// Most cgroup files are a line or a few; memory.stat and a big
	// cgroup.procs grow the buffer.
	b := make([]byte, 0, 512)
	for {
		if len(b) == cap(b) {
			b = slices.Grow(b, cap(b))
		}
		n, err := linux.IgnoringEINTRN(func() (int, error) { return unix.Read(f.fd, b[len(b):cap(b)]) })
		if err != nil {
			return nil, fmt.Errorf("cgroup: read %s: %w", path, err)
		}
		if n == 0 {
			return b, nil
		}
		b = b[:len(b)+n]
	}
}

// readInt reads a file holding one integer, or "max" (returned as -1).
func readInt(path string) (int64, error) {
	b, err := readFile(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return -1, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cgroup: parse %s: %w", path, err)
	}
	return n, nil
}

// readKeyed reads a flat keyed file ("key value" per line): memory.events,
// memory.stat, memory.oom_control, cgroup.events.
func readKeyed(path string) (map[string]uint64, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return parseKeyed(path, b)
}

func parseKeyed(name string, data []byte) (map[string]uint64, error) {
	m := make(map[string]uint64)
	for i, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		key, val, ok := bytes.Cut(line, []byte(" "))
		if !ok {
			return nil, fmt.Errorf("cgroup: parse %s line %d: %q is not \"key value\"", name, i+1, line)
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(val)), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("cgroup: parse %s line %d: %w", name, i+1, err)
		}
		m[string(key)] = n
	}
	return m, nil
}

// keyedValue reads one key of a flat keyed file; a missing key is an error,
// since every key we read is one the kernel always writes.
func keyedValue(path, key string) (uint64, error) {
	m, err := readKeyed(path)
	if err != nil {
		return 0, err
	}
	v, ok := m[key]
	if !ok {
		return 0, fmt.Errorf("cgroup: %s has no %q line", path, key)
	}
	return v, nil
}

// readPids reads a cgroup.procs file.
func readPids(path string) ([]int, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("cgroup: parse %s: %w", path, err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// treeProcs lists the processes of the cgroup at dir and of its
// descendants, sorted, each once.
func treeProcs(dir string) ([]int, error) {
	leaf, err := isLeaf(dir)
	if err != nil {
		return nil, err
	}
	if leaf {
		pids, err := readPids(filepath.Join(dir, "cgroup.procs"))
		slices.Sort(pids)
		return slices.Compact(pids), err
	}
	var all []int
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("cgroup: list %s: %w", p, cause(err))
		}
		if !d.IsDir() {
			return nil
		}
		pids, err := readPids(filepath.Join(p, "cgroup.procs"))
		all = append(all, pids...)
		return err
	})
	slices.Sort(all)
	return slices.Compact(all), err
}

// isLeaf tells whether the directory dir has no subdirectory, from its
// link count alone: a directory's ".." entries count in its parent's, so
// cgroupfs (kernfs), like ext4 and tmpfs, gives a directory 2 links plus
// one per subdirectory. A cgroup directory lists some thirty files, and
// one stat instead of reading them all matters when every container's
// cgroup in every hierarchy is checked at a teardown. A filesystem that
// counts otherwise (btrfs gives 1) reads as not a leaf, and is walked.
func isLeaf(dir string) (bool, error) {
	var st unix.Stat_t
	if err := linux.IgnoringEINTR(func() error { return unix.Stat(dir, &st) }); err != nil {
		return false, fmt.Errorf("cgroup: stat %s: %w", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return false, fmt.Errorf("cgroup: %s: not a directory", dir)
	}
	return st.Nlink == 2, nil
}

// RemoveTree removes the cgroup directory dir and every cgroup below it,
// deepest first, waiting while the kernel still holds one busy (a process
// that has just been killed); a dir that does not exist is not an error.
// It is for a cgroup tree that no driver made, such as a benchmark's or a
// test's in every hierarchy; a driver's cgroups go with Destroy.
func RemoveTree(dir string) error { return removeTree(dir, defaultBackoff()) }

// removeTree removes the cgroup at dir and its descendants, deepest first,
// since rmdir(2) on cgroupfs refuses a cgroup that has children. A cgroup
// whose last process has exited can stay busy for a moment while the kernel
// finishes tearing the task down, so EBUSY is retried; ENOENT means someone
// else removed it, which is what we wanted.
func removeTree(dir string, wait linux.Backoff) error {
	// Most cgroups are empty leaves by the time they go: one rmdir, with
	// no stat or listing before it.
	if gone, err := rmdirIfEmpty(dir); gone || err != nil {
		return err
	}
	leaf, err := isLeaf(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !leaf {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cgroup: list %s: %w", dir, cause(err))
		}
		for _, e := range entries {
			if e.IsDir() {
				if err := removeTree(filepath.Join(dir, e.Name()), wait); err != nil {
					return err
				}
			}
		}
	}
	var last error
	done, err := wait.Poll(func() (bool, error) {
		last = unix.Rmdir(dir)
		switch {
		case last == nil, errors.Is(last, unix.ENOENT):
			return true, nil
		case errors.Is(last, unix.EBUSY), errors.Is(last, unix.EINTR):
			return false, nil
		}
		return false, fmt.Errorf("cgroup: remove %s: %w", dir, last)
	})
	if err != nil {
		return err
	}
	if !done {
		return fmt.Errorf("cgroup: remove %s: still %w after %v", dir, last, wait.Total)
	}
	return nil
}

// rmdirIfEmpty removes the cgroup directory dir if the kernel lets it: it
// reports whether dir is gone (removed, or missing already), and false
// without an error when the cgroup has processes or children (EBUSY;
// ENOTEMPTY on a plain directory standing in for one).
func rmdirIfEmpty(dir string) (bool, error) {
	err := linux.IgnoringEINTR(func() error { return unix.Rmdir(dir) })
	switch {
	case err == nil, errors.Is(err, unix.ENOENT):
		return true, nil
	case errors.Is(err, unix.EBUSY), errors.Is(err, unix.ENOTEMPTY):
		return false, nil
	}
	return false, fmt.Errorf("cgroup: remove %s: %w", dir, err)
}

// defaultBackoff gives the kernel up to ten seconds, polling fast at first:
// most waits (a killed task leaving its cgroup, a freeze completing) end in
// well under a millisecond.
func defaultBackoff() linux.Backoff {
	return linux.Backoff{First: 100 * time.Microsecond, Max: 50 * time.Millisecond, Total: 10 * time.Second}
}

// cleanPath checks a cgroup path given by a caller: relative to the
// hierarchy roots, below them, and not the root itself, which stack must
// never kill or remove.
func cleanPath(p string) (string, error) {
	c := filepath.Clean(p)
	if filepath.IsAbs(p) || c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("cgroup: invalid cgroup path %q: want a relative path below the hierarchy root", p)
	}
	return c, nil
}

// controllers lists the controllers that r's limits need.
func (r Resources) controllers() []string {
	var need []string
	if r.Memory > 0 {
		need = append(need, "memory")
	}
	if r.CPUs > 0 {
		need = append(need, "cpu")
	}
	if r.Pids > 0 {
		need = append(need, "pids")
	}
	if r.Devices != nil {
		need = append(need, "devices")
	}
	return need
}

// prune removes root/path if it is empty. cgroupfs refuses to remove a
// cgroup with children or processes (EBUSY; ENOTEMPTY on some kernels):
// then it is in use by someone else and stays.
func prune(root, path string) error {
	dir := filepath.Join(root, path)
	err := linux.IgnoringEINTR(func() error { return unix.Rmdir(dir) })
	switch {
	case err == nil, errors.Is(err, unix.ENOENT), errors.Is(err, unix.EBUSY), errors.Is(err, unix.ENOTEMPTY):
		return nil
	}
	return fmt.Errorf("cgroup: remove %s: %w", dir, err)
}
