package runtime

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/vfork"
	"github.com/stack-containers/stack/network"
	"github.com/stack-containers/stack/runtime/containerinit"
)

// Most containers are built in the supervisor's own thread, with no init
// program (containerinit's inthread.go says how and why: the Go runtime's
// start in every init was the largest cost of a start). The init program
// stays for what that path cannot do: a new user namespace (unshare of
// one needs a single-threaded process), a cgroup the runtime cannot place
// by itself, a bind mount under
// /proc (the child's procfs, mounted last, would cover it), and processes
// entering a running container (Exec).

// dirOpener is a Cgroup that a clone can place a process in: cgroup v2's.
type dirOpener interface {
	OpenDir() (*os.File, error)
}

// builtInThread reports whether the container can be built in the
// supervisor's thread.
func builtInThread(spec *Spec, cfg *containerinit.Config) bool {
	if !vfork.Supported || cfg.NewUser {
		return false
	}
	for _, m := range cfg.Mounts {
		if t := filepath.Clean("/" + m.Target); t == "/proc" || strings.HasPrefix(t, "/proc/") {
			return false
		}
	}
	switch spec.Cgroup.(type) {
	case nil, taskFiler, dirOpener:
		return true
	}
	return false
}

// startInThread builds and starts the container on one of the builder
// threads (builders.go). unshare are the container's new namespaces, as
// clone flags.
func startInThread(spec *Spec, cfg *containerinit.Config, unshare uintptr) (*Container, error) {
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	hold := func(f *os.File) int {
		files = append(files, f)
		return int(f.Fd())
	}
	for _, kind := range slices.Sorted(maps.Keys(spec.Join)) {
		f, err := os.Open(fmt.Sprintf("/proc/%d/ns/%s", spec.Join[kind], kind))
		if err != nil {
			return nil, fmt.Errorf("join %s namespace: %w", kind, err)
		}
		cfg.Joins = append(cfg.Joins, containerinit.NsJoin{Kind: kind, FD: hold(f)})
	}
	cgroupFD := -1
	switch cg := spec.Cgroup.(type) {
	case taskFiler:
		tasks, err := cg.OpenTaskFiles()
		if err != nil {
			return nil, fmt.Errorf("join cgroup %s: %w", spec.Cgroup.Path(), err)
		}
		for _, f := range tasks {
			cfg.Placement.Tasks = append(cfg.Placement.Tasks, containerinit.CgroupTasks{FD: hold(f), Path: f.Name()})
		}
	case dirOpener:
		f, err := cg.OpenDir()
		if err != nil {
			return nil, fmt.Errorf("join cgroup %s: %w", spec.Cgroup.Path(), err)
		}
		cgroupFD = hold(f)
	}
	stdio, copyOut, err := stdioOf(spec, hold)
	if err != nil {
		return nil, err
	}
	var pid int
	var buildErr error
	if err := builders.do(func() {
		pid, buildErr = buildInThread(spec, cfg, unshare, stdio, cgroupFD)
	}); err != nil {
		buildErr = err
	}
	// The parent's ends go now, the pipes' write ends among them, so
	// that the copies end when the container's last writer has.
	for _, f := range files {
		f.Close()
	}
	files = nil
	copied := copyOut()
	if buildErr != nil {
		<-copied
		return nil, buildErr
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		// Not reached on Linux, where FindProcess always succeeds; the
		// child is this process's and unreaped, so its pid is its own.
		unix.Kill(pid, unix.SIGKILL)
		return nil, fmt.Errorf("hold the container's process: %w", err)
	}
	c := &Container{child: child{proc: proc, copied: copied, what: fmt.Sprintf("container %q", spec.Name), done: make(chan struct{})},
		name: spec.Name, layerDir: spec.LayerDir}
	go c.wait()
	return c, nil
}

// onOtherThanMain runs fn locked to a thread that is not the process's
// main thread. The main thread must keep the host's namespaces and root:
// /proc/self is the main thread's, for every thread that reads it, and Go
// never ends the main thread, even when a goroutine exits locked to it.
// A goroutine started while this one holds the main thread locked cannot
// run there.
func onOtherThanMain(fn func()) {
	goruntime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		go onOtherThanMain(fn)
		goruntime.UnlockOSThread()
		return
	}
	fn()
}

// stdioOf opens the program's 0, 1 and 2: /dev/null for stdin and for an
// output not given, the given files, and pipes for other writers (one for
// both when they are the same, as os/exec does), whose copying the
// returned function starts; the channel it returns is closed once both
// copies have reached end-of-file.
func stdioOf(spec *Spec, hold func(*os.File) int) (containerinit.Stdio, func() <-chan struct{}, error) {
	var stdio containerinit.Stdio
	var readers []*os.File
	var writers []io.Writer
	fail := func(err error) (containerinit.Stdio, func() <-chan struct{}, error) {
		for _, r := range readers {
			r.Close()
		}
		return stdio, nil, err
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return fail(fmt.Errorf("open %s: %w", os.DevNull, err))
	}
	stdio[0] = hold(null)
	outputs := []io.Writer{spec.Stdout, spec.Stderr}
	for i, w := range outputs {
		switch f, ok := w.(*os.File); {
		case w == nil:
			stdio[i+1] = stdio[0]
		case i == 1 && w == outputs[0]:
			stdio[2] = stdio[1]
		case ok:
			// A copy at 3 or above, so that no dup3 onto 0, 1 or 2 in
			// the child overwrites a descriptor a later one reads.
			dup, err := dupAbove2(f)
			if err != nil {
				return fail(fmt.Errorf("container output: %w", err))
			}
			stdio[i+1] = hold(dup)
		default:
			r, pw, err := os.Pipe()
			if err != nil {
				return fail(fmt.Errorf("container output: %w", err))
			}
			readers, writers = append(readers, r), append(writers, w)
			stdio[i+1] = hold(pw)
		}
	}
	copyOut := func() <-chan struct{} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			var wg sync.WaitGroup
			for i, r := range readers {
				wg.Go(func() {
					// The writer's errors are its own: the program's
					// output is read to its end regardless.
					_, _ = io.Copy(writers[i], r)
					r.Close()
				})
			}
			wg.Wait()
		}()
		return done
	}
	return stdio, copyOut, nil
}

// dupAbove2 is a copy of f's descriptor numbered 3 or more, close-on-exec.
// f.Fd puts the file in blocking mode, as os/exec does for a file it
// passes: the program's writes must wait on a full pipe, not fail.
func dupAbove2(f *os.File) (*os.File, error) {
	dup, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(dup), f.Name()), nil
}

// buildInThread builds and starts the container on the calling thread,
// locked to it; its errors read as the init's would.
func buildInThread(spec *Spec, cfg *containerinit.Config, unshare uintptr, stdio containerinit.Stdio, cgroupFD int) (int, error) {
	var linkErr error
	linked := func(tid int) error {
		linkErr = attachAt(spec.Interface, tid)
		return linkErr
	}
	b, err := containerinit.BuildInThread(cfg, unshare, linked)
	if err == nil {
		var pid int
		if pid, err = b.Start(stdio, cgroupFD); err == nil {
			return pid, nil
		}
	}
	if linkErr != nil && errors.Is(err, linkErr) {
		return 0, err
	}
	return 0, decodeFailure(containerinit.Failure(err))
}

// attachAt makes the container's veth pair and configures its end as eth0
// in the network namespace of thread tid (the one building the
// container): the program never runs without its eth0.
func attachAt(iface *network.Interface, tid int) error {
	return network.AttachInto(iface, tid)
}
