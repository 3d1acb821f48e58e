package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/capability"
	"github.com/stack-containers/stack/internal/linux"
	"github.com/stack-containers/stack/network"
	"github.com/stack-containers/stack/runtime/containerinit"
	"github.com/stack-containers/stack/seccomp"
)

// defaultPath is the PATH a container gets when its Env has none (Docker's).
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// cloneFlags are the namespaces the kernel creates at clone time. "cgroup"
// is not among them: the init unshares it after its cgroup placement.
var cloneFlags = map[string]uintptr{
	"pid":   unix.CLONE_NEWPID,
	"mount": unix.CLONE_NEWNS,
	"uts":   unix.CLONE_NEWUTS,
	"ipc":   unix.CLONE_NEWIPC,
	"net":   unix.CLONE_NEWNET,
	"user":  unix.CLONE_NEWUSER,
}

// Container is a started container.
type Container struct {
	child
	name     string
	layerDir string
}

// child is a started process of stack's (a container's PID 1, a process
// entering a container), awaited once by its own goroutine (wait) for any
// number of readers (Done, Wait).
type child struct {
	// cmd started the process, or, for a container built in the
	// supervisor's thread, proc is all there is.
	cmd  *exec.Cmd
	proc *os.Process
	// copied, with proc, is closed once the process's output has been
	// copied to the writers that are not files.
	copied <-chan struct{}
	// what names the process in errors: `container "web"`.
	what string
	done chan struct{}
	// status and err are written once, before done is closed.
	status ExitStatus
	err    error
}

func newChild(cmd *exec.Cmd, what string) child {
	return child{cmd: cmd, what: what, done: make(chan struct{})}
}

// process is the started process.
func (c *child) process() *os.Process {
	if c.cmd != nil {
		return c.cmd.Process
	}
	return c.proc
}

// Done is closed once the process has ended and been reaped.
func (c *child) Done() <-chan struct{} { return c.done }

// Wait returns how the process ended; any number of goroutines may call
// it, any number of times.
func (c *child) Wait() (ExitStatus, error) {
	<-c.done
	return c.status, c.err
}

// wait reaps the process. An exit status that is not 0 is the process's
// to report, not a failure of the wait; nor is output held open past
// cmd.WaitDelay by a process the child left behind.
func (c *child) wait() {
	defer close(c.done)
	c.awaitExit()
	if c.cmd == nil {
		st, err := c.proc.Wait()
		<-c.copied
		if err != nil {
			c.err = fmt.Errorf("%s: wait: %w", c.what, err)
		}
		if st != nil {
			c.status = exitStatus(st.Sys().(syscall.WaitStatus))
		}
		return
	}
	err := c.cmd.Wait()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) && !errors.Is(err, exec.ErrWaitDelay) {
		c.err = fmt.Errorf("%s: wait: %w", c.what, err)
	}
	if c.cmd.ProcessState != nil {
		c.status = exitStatus(c.cmd.ProcessState.Sys().(syscall.WaitStatus))
	}
}

// awaitExit returns once the process has exited, parked in the runtime's
// poller on a pidfd. cmd.Wait alone would hold a thread in waitid for as
// long as the process runs: one thread of the supervisor per container,
// each made while the stack starts. After this it reaps a zombie at once.
// Without a pidfd (before Linux 5.10), or should the poll fail, cmd.Wait
// waits by itself, as before. The pid is safe to open by: the process is
// this child's, and nothing reaps it before cmd.Wait.
func (c *child) awaitExit() {
	p, err := linux.OpenPidfd(c.process().Pid)
	if err != nil {
		return
	}
	defer p.Close()
	_ = p.Wait(context.Background())
}

// Start starts the container and returns once its program has been
// exec'd. On failure nothing keeps running and the layer dir is removed;
// the error names the container.
func Start(spec *Spec) (*Container, error) {
	c, err := start(spec)
	if err != nil {
		return nil, fmt.Errorf("container %q: %w", spec.Name, err)
	}
	return c, nil
}

func start(spec *Spec) (_ *Container, err error) {
	cfg, attr, err := prepare(spec)
	if err != nil {
		return nil, err
	}
	if err := makeLayer(spec.LayerDir, spec.ReadOnly); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if rerr := RemoveLayer(spec.LayerDir); rerr != nil {
				err = fmt.Errorf("%w (and then: %w)", err, rerr)
			}
		}
	}()
	if builtInThread(spec, cfg) {
		return startInThread(spec, cfg, attr.Cloneflags)
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("init pipe: %w", err)
	}
	pipe := pair[0]
	defer unix.Close(pipe)
	files := []*os.File{os.NewFile(uintptr(pair[1]), "init-pipe")}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, kind := range slices.Sorted(maps.Keys(spec.Join)) {
		p := fmt.Sprintf("/proc/%d/ns/%s", spec.Join[kind], kind)
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("join %s namespace: %w", kind, err)
		}
		cfg.Joins = append(cfg.Joins, containerinit.NsJoin{Kind: kind, FD: initPipeFD + len(files)})
		files = append(files, f)
	}
	// Cgroup placement is a step of the init, not CLONE_INTO_CGROUP: the
	// init's own pages (a Go runtime) stay charged where the supervisor
	// runs, and only the user's program counts against the container's
	// limits.
	files, placeCg, err := planPlacement(&cfg.Placement, spec.Cgroup, files)
	if err != nil {
		return nil, err
	}
	payload, err := containerinit.EncodeConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode the init configuration: %w", err)
	}
	// Queued before the init even exists: it finds its configuration
	// waiting, without a round trip.
	if err := containerinit.Send(pipe, containerinit.MsgConfig, payload); err != nil {
		return nil, fmt.Errorf("send the init configuration: %w", err)
	}
	initPath, extra := spec.Init.command(files)
	cmd := &exec.Cmd{
		Path:        initPath,
		Args:        []string{"stack", containerinit.InitArg},
		Env:         initEnv(),
		Stdout:      spec.Stdout,
		Stderr:      spec.Stderr,
		ExtraFiles:  extra,
		SysProcAttr: attr,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start init: %w", err)
	}
	// The init holds its own copies now; ours must go for the pipe to
	// reach end-of-file when the init execs.
	for _, f := range files {
		f.Close()
	}
	files = nil
	err = nil
	if spec.Interface != nil {
		err = attachInterface(pipe, cmd.Process.Pid, spec.Interface)
		if err != nil {
			if ierr := reportedFailure(pipe); ierr != nil {
				err = ierr
			}
		}
	}
	if err == nil {
		err = handshake(pipe, cmd.Process.Pid, placeCg)
	}
	if err != nil {
		// The init exits by itself after reporting; the kill covers an
		// init stuck or killed halfway. Killing a pid namespace's PID 1
		// ends the whole namespace.
		if kerr := cmd.Process.Kill(); kerr != nil && !errors.Is(kerr, os.ErrProcessDone) {
			err = fmt.Errorf("%w (and then: kill init: %w)", err, kerr)
		}
		werr := cmd.Wait()
		if errors.Is(err, errInitDied) {
			err = fmt.Errorf("%w: %v", err, werr)
		}
		return nil, err
	}
	c := &Container{child: newChild(cmd, fmt.Sprintf("container %q", spec.Name)), name: spec.Name, layerDir: spec.LayerDir}
	go c.wait()
	return c, nil
}

// attachInterface makes the container's veth pair, its end in the new net
// namespace of the init, configures that end as eth0 from outside the
// namespace, and only then lets the init go on to its placement and exec
// (Config.Linked): the program never runs without its eth0.
func attachInterface(pipe, pid int, iface *network.Interface) error {
	if err := network.AttachInto(iface, pid); err != nil {
		return err
	}
	if err := containerinit.Send(pipe, containerinit.MsgLinked, nil); err != nil {
		return fmt.Errorf("tell init the interface is there: %w", err)
	}
	return nil
}

// reportedFailure is the failure the init has reported, when one waits in
// the pipe, else nil; it never blocks. The init builds its rootfs while the
// parent attaches its interface: an init that failed there has exited, the
// attach then fails for want of its namespace, and the init's reason is
// the one to report.
func reportedFailure(pipe int) error {
	n, _, err := unix.Recvfrom(pipe, nil, unix.MSG_PEEK|unix.MSG_TRUNC|unix.MSG_DONTWAIT)
	if err != nil || n == 0 {
		return nil
	}
	kind, payload, err := containerinit.Receive(pipe)
	if err != nil {
		return nil
	}
	switch kind {
	case containerinit.MsgError, containerinit.MsgCommandError, containerinit.MsgProgramError:
		return decodeFailure(kind, payload)
	}
	return fmt.Errorf("unexpected message %q from init before its interface was there", kind)
}

// errInitDied means the init ended without saying why (killed, or crashed
// with its message on the container's stderr).
var errInitDied = errors.New("init ended before exec")

// handshake follows the init from its configuration to its execve: it
// places it in its cgroup when asked and returns nil once exec succeeded.
func handshake(pipe, pid int, cg Cgroup) error {
	execing := false
	for {
		kind, payload, err := containerinit.Receive(pipe)
		if errors.Is(err, io.EOF) {
			if execing {
				return nil
			}
			return errInitDied
		}
		if err != nil {
			return fmt.Errorf("read from init: %w", err)
		}
		switch kind {
		case containerinit.MsgReady:
			if cg == nil {
				return errors.New("init asked for a cgroup placement nobody asked for")
			}
			if err := cg.AddProc(pid); err != nil {
				return fmt.Errorf("join cgroup %s: %w", cg.Path(), err)
			}
			if err := containerinit.Send(pipe, containerinit.MsgGo, nil); err != nil {
				return fmt.Errorf("resume init: %w", err)
			}
		case containerinit.MsgExec:
			execing = true
		case containerinit.MsgError, containerinit.MsgCommandError, containerinit.MsgProgramError:
			return decodeFailure(kind, payload)
		default:
			return fmt.Errorf("unexpected message %q from init", kind)
		}
	}
}

// prepare checks the spec and turns it into the init's configuration and
// the clone attributes.
func prepare(spec *Spec) (*containerinit.Config, *syscall.SysProcAttr, error) {
	if len(spec.Args) == 0 || spec.Args[0] == "" {
		return nil, nil, errors.New("no command")
	}
	if !filepath.IsAbs(spec.LayerDir) {
		return nil, nil, fmt.Errorf("layer dir %q is not an absolute path", spec.LayerDir)
	}
	attr := &syscall.SysProcAttr{
		// Its own session: a Ctrl-C on the supervisor's terminal must
		// not reach the container directly.
		Setsid: true,
		// The kernel sends it when the thread that forked the init
		// exits. Go keeps its threads for the process's life unless a
		// goroutine exits while locked to one, which the supervisor
		// never does, so in practice this is the supervisor's death.
		Pdeathsig: spec.ParentDeathSignal,
	}
	caps, filter, err := confinement(spec.Caps, spec.Seccomp)
	if err != nil {
		return nil, nil, err
	}
	cfg := &containerinit.Config{
		Process: containerinit.Process{
			Args:              spec.Args,
			Workdir:           spec.Workdir,
			User:              spec.User,
			UID:               spec.UID,
			GID:               spec.GID,
			Caps:              caps,
			Seccomp:           filter,
			ParentDeathSignal: spec.ParentDeathSignal,
		},
		Layer:    spec.LayerDir,
		ReadOnly: spec.ReadOnly,
		Mounts:   spec.Mounts,
	}
	if cfg.Workdir == "" {
		cfg.Workdir = "/"
	}
	for _, ns := range spec.Namespaces {
		switch {
		case ns == "cgroup":
			cfg.NewCgroup = true
		case cloneFlags[ns] != 0:
			attr.Cloneflags |= cloneFlags[ns]
		default:
			return nil, nil, fmt.Errorf("unknown namespace %q", ns)
		}
	}
	if attr.Cloneflags&unix.CLONE_NEWNS == 0 {
		return nil, nil, errors.New(`namespaces: "mount" is required (the rootfs lives in it)`)
	}
	for kind := range spec.Join {
		if kind != "net" && kind != "ipc" && kind != "uts" {
			return nil, nil, fmt.Errorf("join %s: only net, ipc and uts can be joined", kind)
		}
		if slices.Contains(spec.Namespaces, kind) {
			return nil, nil, fmt.Errorf("namespace %s is both new and joined", kind)
		}
	}
	cfg.NewNet = slices.Contains(spec.Namespaces, "net")
	if spec.Interface != nil {
		if !cfg.NewNet {
			return nil, nil, errors.New("a network interface needs a net namespace of the container's own")
		}
		cfg.Linked = true
	}
	cfg.NewUser = slices.Contains(spec.Namespaces, "user")
	if cfg.NewUser {
		// The identity mapping: uid 0 in the container is uid 0 on the
		// host for file ownership, while its capabilities only reach
		// the namespaces it owns.
		id := []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1<<32 - 1}}
		attr.UidMappings, attr.GidMappings = id, id
		attr.GidMappingsEnableSetgroups = true
	}
	if slices.Contains(spec.Namespaces, "uts") {
		cfg.Hostname = spec.Hostname
		if cfg.Hostname == "" {
			cfg.Hostname = spec.Name
		}
	}
	cfg.Env = withDefaultPath(spec.Env)
	lower, err := resolveRootfs(spec)
	if err != nil {
		return nil, nil, err
	}
	cfg.Lower = lower
	for _, m := range spec.Mounts {
		if !filepath.IsAbs(m.Target) {
			return nil, nil, fmt.Errorf("bind mount %s: target %q is not an absolute path", m.Source, m.Target)
		}
		if _, err := os.Stat(m.Source); err != nil {
			return nil, nil, fmt.Errorf("bind mount %s on %s: source: %w", m.Source, m.Target, err)
		}
	}
	return cfg, attr, nil
}

// confinement is the capability mask and the seccomp filter for a process
// with capabilities caps under profile, Docker's defaults where either is
// nil. The filter is compiled here, in the parent: the profile's rules
// depend on the capabilities, and the init has no profile file to read.
func confinement(caps []string, profile *seccomp.Profile) (uint64, *containerinit.Filter, error) {
	if caps == nil {
		caps = capability.Default
	}
	mask, err := capability.Mask(caps)
	if err != nil {
		return 0, nil, err
	}
	if profile == nil {
		profile = seccomp.Default()
	}
	prog, err := profile.Compile(caps)
	if err != nil || prog == nil {
		return mask, nil, err
	}
	return mask, &containerinit.Filter{Flags: prog.Flags, Instructions: prog.Encode()}, nil
}

// withDefaultPath is env with Docker's PATH added when it has none.
func withDefaultPath(env []string) []string {
	if slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "PATH=") }) {
		return env
	}
	return append(slices.Clip(env), defaultPath)
}

// resolveRootfs returns the overlay's lowerdir: the rootfs directory, or
// an image's layers top first, as overlayfs lists them.
func resolveRootfs(spec *Spec) (string, error) {
	dirs := spec.Layers
	if len(dirs) == 0 {
		dirs = []string{spec.Rootfs}
	}
	lower := make([]string, 0, len(dirs))
	for i := len(dirs) - 1; i >= 0; i-- {
		dir := dirs[i]
		st, err := os.Stat(dir)
		if err != nil {
			return "", fmt.Errorf("rootfs: %w", err)
		}
		if !st.IsDir() {
			return "", fmt.Errorf("rootfs %s: not a directory", dir)
		}
		if (!spec.ReadOnly || len(dirs) > 1) && strings.ContainsAny(dir, ":,") {
			// overlayfs splits lowerdir at ':' and older kernels the
			// options at ','.
			return "", fmt.Errorf("rootfs %s: overlayfs cannot take a path with ':' or ','", dir)
		}
		lower = append(lower, dir)
	}
	return strings.Join(lower, ":"), nil
}

// makeLayer creates the layer dir, the mount point of the container's
// root. For a writable root it is also the overlay's upper directory, and
// its work directory is made beside it (WorkDir), rather than an upper
// directory of its own under the mount point. Every directory
// made is an inode the state's filesystem allocates at each start and
// frees at each down; a filesystem without a journal (ext4's nojournal
// mode) then searches past every inode freed in the last seconds at each
// allocation, so their number counts twice. The parent, the container's
// own directory, is made too if missing. The layer dir is 0755 for a
// writable root, since overlayfs gives the container's / the upper
// directory's mode. A layer left by an earlier run of the same container
// is kept, as Docker keeps a restarted container's changes.
func makeLayer(dir string, readOnly bool) error {
	mode := os.FileMode(0o755)
	if readOnly {
		mode = 0o700
	}
	if err := os.MkdirAll(dir, mode); err != nil {
		return fmt.Errorf("make layer: %w", err)
	}
	if readOnly {
		return nil
	}
	err := os.Mkdir(containerinit.WorkDir(dir), 0o700)
	switch {
	case errors.Is(err, os.ErrExist):
		// A restart: the layer's last mount left its volatile mark.
		return containerinit.ClearVolatileMark(dir)
	case err != nil:
		return fmt.Errorf("make layer: %w", err)
	}
	return nil
}

// RemoveLayer removes a container's layer dir and its work dir; missing
// ones are not an error. It needs no handle, so that `stack down` can
// clean up after a supervisor that was killed. Nothing is mounted there
// in the host's mount namespace: the container's mounts lived and died in
// its own.
func RemoveLayer(layerDir string) error {
	if !filepath.IsAbs(layerDir) || filepath.Clean(layerDir) == "/" {
		return fmt.Errorf("remove layer %q: not a layer dir", layerDir)
	}
	var errs []error
	for _, dir := range []string{layerDir, containerinit.WorkDir(layerDir)} {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove layer: %w", err)
	}
	return nil
}

// Pid is the host pid of the container's PID 1.
func (c *Container) Pid() int { return c.process().Pid }

func exitStatus(ws syscall.WaitStatus) ExitStatus {
	if ws.Signaled() {
		return ExitStatus{Code: 128 + int(ws.Signal()), Signaled: true, Signal: ws.Signal()}
	}
	return ExitStatus{Code: ws.ExitStatus()}
}

// Signal sends sig to the container's PID 1; it is not an error if the
// container has already ended.
func (c *Container) Signal(sig syscall.Signal) error {
	err := c.process().Signal(sig)
	if err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("container %q: signal %v: %w", c.name, sig, err)
	}
	return nil
}

// Cleanup kills the container if it still runs, waits for it and removes
// its layer. It is safe to call more than once.
func (c *Container) Cleanup() error {
	select {
	case <-c.done:
	default:
		if err := c.Signal(syscall.SIGKILL); err != nil {
			return err
		}
		<-c.done
	}
	if err := RemoveLayer(c.layerDir); err != nil {
		return fmt.Errorf("container %q: %w", c.name, err)
	}
	return nil
}
