package containerinit

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/vfork"
)

// A container built in the supervisor's own thread (BuildInThread and
// Built.Start), the way most containers start: no init program runs. The
// Go runtime's start and end in every init cost more CPU than anything
// else the start of a container does, so the parent does the init's work
// itself, on a goroutine locked to its thread that never unlocks:
//
//  1. the thread takes a filesystem context and the new namespaces of its
//     own (unshare: mount, uts, ipc, net, and pid for its children), joins
//     those to join, and builds the rootfs, hostname, workdir and user
//     exactly as runInit does, up to the PATH lookup;
//  2. a child, cloned from that thread (internal/vfork: it shares the
//     supervisor's memory until execve and runs no Go code of its own)
//     makes the calls that need a process of the container's pid
//     namespace or its own credentials: it mounts /proc (a procfs belongs
//     to the pid namespace of the process that creates it) and masks it,
//     joins the cgroup, and goes on as execProgram does, in the same
//     order, to the execve of the program.
//
// What crosses from step 1 to step 2 is data, so the two cannot disagree
// with the init program's path: the same functions build the rootfs, and
// the child's calls are execProgram's, one for one.

// Stdio are the descriptors the program gets as 0, 1 and 2.
type Stdio [3]int

// Built is a container whose namespaces, rootfs, hostname, workdir and user
// the calling thread has set up; Start finishes it.
type Built struct {
	cfg  *Config
	prog string
	id   identity
	// procDir is the rootfs's /proc, null its /dev/null: O_PATH
	// descriptors the child inherits.
	procDir, null int
	host          *hostFacts
}

// hostFacts are what every build needs to know of the kernel and of the
// process, and which no build changes: found once (factsOnce), in the
// process's own namespaces, rather than with some sixty system calls at
// every container's start.
type hostFacts struct {
	proc procEntries
	// permitted are the process's capabilities, which a builder thread
	// has and the child starts with; lastCap the last one the kernel
	// knows.
	permitted uint64
	lastCap   int
}

var factsOnce = sync.OnceValues(findHostFacts)

func findHostFacts() (*hostFacts, error) {
	proc, err := probeProc()
	if err != nil {
		return nil, err
	}
	permitted, lastCap, err := capabilities()
	if err != nil {
		return nil, err
	}
	return &hostFacts{proc: proc, permitted: permitted, lastCap: lastCap}, nil
}

// procEntries are the /proc entries the kernel has, among those masked or
// made read-only: the kernel's own files, the same in every procfs, so
// the host's tell what the container's will hold.
type procEntries struct {
	masked   []procEntry
	readonly []string
}

type procEntry struct {
	name string
	dir  bool
}

// BuildInThread builds cfg's container on the calling thread, which must
// be locked to its goroutine and never unlocked: it takes namespaces of its
// own (unshare flags, CLONE_NEW* of the container's new namespaces besides
// the cgroup's) and its root becomes the container's. Once the new network
// namespace exists, linked is called with the thread's id (its
// /proc/TID/ns/net is the container's) and must return once the
// container's interface is configured there; it runs while the rootfs is
// built. The errors are those runInit reports.
func BuildInThread(cfg *Config, unshare uintptr, linked func(tid int) error) (*Built, error) {
	// Before unshare: the host's /proc is the one to probe.
	host, err := factsOnce()
	if err != nil {
		return nil, err
	}
	if err := unix.Unshare(unix.CLONE_FS | int(unshare)); err != nil {
		return nil, fmt.Errorf("new namespaces: %w", err)
	}
	unix.Umask(0)
	for _, j := range cfg.Joins {
		if err := unix.Setns(j.FD, nsFlags[j.Kind]); err != nil {
			return nil, fmt.Errorf("join %s namespace: %w", j.Kind, err)
		}
	}
	if cfg.NewNet {
		if err := loopbackUp(); err != nil {
			return nil, err
		}
	}
	link := make(chan error, 1)
	if cfg.Linked {
		tid := unix.Gettid()
		go func() { link <- linked(tid) }()
	} else {
		link <- nil
	}
	b := &Built{cfg: cfg, host: host, procDir: -1, null: -1}
	if err := b.build(); err != nil {
		<-link
		b.Close()
		return nil, err
	}
	if err := <-link; err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func (b *Built) build() error {
	var err error
	if b.procDir, b.null, err = buildRootfsDeferringProc(b.cfg); err != nil {
		return err
	}
	if b.cfg.Hostname != "" {
		if err := unix.Sethostname([]byte(b.cfg.Hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", b.cfg.Hostname, err)
		}
	}
	if b.prog, err = resolveProgram(&b.cfg.Process); err != nil {
		return err
	}
	b.id, err = identityOf(&b.cfg.Process)
	return err
}

// Close releases what the thread holds for the child. Start does it.
func (b *Built) Close() {
	for _, fd := range []int{b.procDir, b.null} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	b.procDir, b.null = -1, -1
}

// Start clones the container's PID 1 from the calling thread, into the
// cgroup cgroupFD when it is not -1 (v2; v1 placement goes by
// cfg.Placement's tasks files), with stdio as its 0, 1 and 2, and returns
// its pid once its program has been exec'd.
func (b *Built) Start(stdio Stdio, cgroupFD int) (int, error) {
	defer b.Close()
	p, err := b.program(stdio)
	if err != nil {
		return 0, err
	}
	pid, pidfd, err := p.Start(0, cgroupFD)
	if err != nil {
		var verr *vfork.Error
		if errors.As(err, &verr) && verr.Exec {
			return 0, &commandError{err: fmt.Errorf("exec %q: %w", b.cfg.Args[0], verr.Errno), program: true}
		}
		return 0, err
	}
	unix.Close(pidfd)
	return pid, nil
}

// program is what the child does: the steps of runInit from /proc on,
// then execProgram's, as calls.
func (b *Built) program(stdio Stdio) (*vfork.Program, error) {
	p := &vfork.Program{}
	p.Exec(b.prog, b.cfg.Args, b.cfg.Env)
	if sig := b.cfg.ParentDeathSignal; sig != 0 {
		// At once, as os/exec's Pdeathsig is: the supervisor may die
		// while the child is still being set up.
		p.Call("set parent-death signal", unix.SYS_PRCTL, vfork.Val(unix.PR_SET_PDEATHSIG), vfork.Val(uintptr(sig)))
	}
	// Its own session: a Ctrl-C on the supervisor's terminal must not
	// reach the container directly.
	p.Call("new session", unix.SYS_SETSID)
	for i, fd := range stdio {
		p.Call(fmt.Sprintf("descriptor %d", i), unix.SYS_DUP3, vfork.Val(uintptr(fd)), vfork.Val(uintptr(i)), vfork.Val(0))
	}
	b.mountProc(p)
	for _, t := range b.cfg.Placement.Tasks {
		p.Call("join cgroup: write 0 to "+t.Path, unix.SYS_WRITE, vfork.Val(uintptr(t.FD)), vfork.Val(p.Str("0")), vfork.Val(1))
	}
	if b.cfg.NewCgroup {
		// After placement, so that the container's cgroup is the root of
		// its cgroup namespace.
		p.Call("new cgroup namespace", unix.SYS_UNSHARE, vfork.Val(unix.CLONE_NEWCGROUP))
	}
	if err := b.execCalls(p); err != nil {
		return nil, err
	}
	return p, nil
}

// mountProc mounts a procfs of the child's pid namespace on the rootfs's
// /proc and masks it, as mountProc does in the init.
func (b *Built) mountProc(p *vfork.Program) {
	m := fsMount{fstype: "proc", source: "proc",
		attrs: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC, target: "/proc"}
	proc := m.calls(p)
	p.Call(m.what("move_mount"), unix.SYS_MOVE_MOUNT, proc, vfork.Val(p.Str("")), vfork.Val(uintptr(b.procDir)), vfork.Val(p.Str("")),
		vfork.Val(unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH))
	for _, e := range b.host.proc.masked {
		name := "/proc/" + e.name
		fd := p.Call("open "+name, unix.SYS_OPENAT, proc, vfork.Val(p.Str(e.name)), vfork.Val(unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC))
		if e.dir {
			t := fsMount{fstype: "tmpfs", source: "tmpfs", attrs: unix.MOUNT_ATTR_RDONLY, target: name}
			attachCall(p, t.what("move_mount"), t.calls(p), fd)
			continue
		}
		what := (&mountError{source: "/dev/null", target: name, flags: words(0, true, false)}).prefix()
		tree := p.Call(what+": open_tree", unix.SYS_OPEN_TREE, vfork.Val(uintptr(b.null)), vfork.Val(p.Str("")),
			vfork.Val(unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH))
		attachCall(p, what+": move_mount", tree, fd)
	}
	for _, name := range b.host.proc.readonly {
		path := "/proc/" + name
		fd := p.Call("open "+path, unix.SYS_OPENAT, proc, vfork.Val(p.Str(name)), vfork.Val(unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC))
		what := (&mountError{source: path, target: path, flags: words(unix.MOUNT_ATTR_RDONLY, true, true)}).prefix()
		tree := p.Call(what+": open_tree", unix.SYS_OPEN_TREE, fd, vfork.Val(p.Str("")),
			vfork.Val(unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH|unix.AT_RECURSIVE))
		attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		p.Keep(attr)
		p.Call(what+": mount_setattr", unix.SYS_MOUNT_SETATTR, tree, vfork.Val(p.Str("")), vfork.Val(unix.AT_EMPTY_PATH|unix.AT_RECURSIVE),
			vfork.Val(uintptr(unsafe.Pointer(attr))), vfork.Val(unsafe.Sizeof(*attr)))
		attachCall(p, what+": move_mount", tree, fd)
	}
}

// calls are create's, as the child's calls; the slot holds the detached
// mount.
func (m fsMount) calls(p *vfork.Program) vfork.Slot {
	fs := p.Call(m.what("fsopen"), unix.SYS_FSOPEN, vfork.Val(p.Str(m.fstype)), vfork.Val(unix.FSOPEN_CLOEXEC))
	p.Call(m.what("fsconfig source"), unix.SYS_FSCONFIG, fs, vfork.Val(unix.FSCONFIG_SET_STRING), vfork.Val(p.Str("source")), vfork.Val(p.Str(m.source)), vfork.Val(0))
	p.Call(m.what("fsconfig create"), unix.SYS_FSCONFIG, fs, vfork.Val(unix.FSCONFIG_CMD_CREATE), vfork.Val(0), vfork.Val(0), vfork.Val(0))
	return p.Call(m.what("fsmount"), unix.SYS_FSMOUNT, fs, vfork.Val(unix.FSMOUNT_CLOEXEC), vfork.Val(uintptr(m.attrs)))
}

// what is how an error of op names the mount: mountError's words.
func (m fsMount) what(op string) string {
	e := m.fail(op, nil).(*mountError)
	return e.prefix() + ": " + op
}

// attachCall moves the detached mount in slot mnt onto the target in slot
// target.
func attachCall(p *vfork.Program, what string, mnt, target vfork.Slot) {
	p.Call(what, unix.SYS_MOVE_MOUNT, mnt, vfork.Val(p.Str("")), target, vfork.Val(p.Str("")),
		vfork.Val(unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH))
}

// execCalls are execProgram's steps, in its order, as the child's calls;
// dropPrivileges's are worked out here from what the thread knows: its
// own capabilities are what the child starts with.
func (b *Built) execCalls(p *vfork.Program) error {
	cp := &b.cfg.Process
	p.Call("mark descriptors close-on-exec", unix.SYS_CLOSE_RANGE, vfork.Val(3), vfork.Val(^uintptr(0)), vfork.Val(closeRangeCloexec))
	p.CallTolerating("join a new session keyring", unix.ENOSYS, unix.SYS_KEYCTL, vfork.Val(unix.KEYCTL_JOIN_SESSION_KEYRING), vfork.Val(0))
	for c := 0; c <= b.host.lastCap; c++ {
		if cp.Caps&(1<<c) == 0 {
			p.Call(fmt.Sprintf("drop capability %d from the bounding set", c), unix.SYS_PRCTL, vfork.Val(unix.PR_CAPBSET_DROP), vfork.Val(uintptr(c)))
		}
	}
	p.Call("clear ambient capabilities", unix.SYS_PRCTL, vfork.Val(unix.PR_CAP_AMBIENT), vfork.Val(unix.PR_CAP_AMBIENT_CLEAR_ALL), vfork.Val(0), vfork.Val(0), vfork.Val(0))
	groups := make([]uint32, len(b.id.groups))
	copy(groups, b.id.groups)
	var groupsPtr uintptr
	if len(groups) > 0 {
		p.Keep(groups)
		groupsPtr = uintptr(unsafe.Pointer(&groups[0]))
	}
	p.Call(fmt.Sprintf("set supplementary groups %v", b.id.groups), unix.SYS_SETGROUPS, vfork.Val(uintptr(len(groups))), vfork.Val(groupsPtr))
	p.Call(fmt.Sprintf("set group %d", b.id.gid), unix.SYS_SETRESGID, vfork.Val(uintptr(b.id.gid)), vfork.Val(uintptr(b.id.gid)), vfork.Val(uintptr(b.id.gid)))
	p.Call(fmt.Sprintf("set user %d", b.id.uid), unix.SYS_SETRESUID, vfork.Val(uintptr(b.id.uid)), vfork.Val(uintptr(b.id.uid)), vfork.Val(uintptr(b.id.uid)))
	// What capget would read after setresuid: a uid other than 0 has lost
	// its permitted and effective sets; uid 0 keeps the thread's.
	keep := b.host.permitted & cp.Caps
	if b.id.uid != 0 {
		keep = 0
	}
	hdr := &unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := &[2]unix.CapUserData{}
	for i := range data {
		data[i].Effective = uint32(keep >> (32 * i))
		data[i].Permitted = uint32(keep >> (32 * i))
	}
	p.Keep(hdr)
	p.Keep(data)
	p.Call("set capabilities", unix.SYS_CAPSET, vfork.Val(uintptr(unsafe.Pointer(hdr))), vfork.Val(uintptr(unsafe.Pointer(&data[0]))))
	p.Call("set no_new_privs", unix.SYS_PRCTL, vfork.Val(unix.PR_SET_NO_NEW_PRIVS), vfork.Val(1), vfork.Val(0), vfork.Val(0), vfork.Val(0))
	if sig := cp.ParentDeathSignal; sig != 0 {
		// Changing credentials cleared it.
		p.Call("set parent-death signal", unix.SYS_PRCTL, vfork.Val(unix.PR_SET_PDEATHSIG), vfork.Val(uintptr(sig)))
	}
	limit, err := programOpenFilesLimit()
	if err != nil {
		return err
	}
	p.Keep(limit)
	p.Call(fmt.Sprintf("set the open files limit to %d", limit.Max), unix.SYS_PRLIMIT64, vfork.Val(0), vfork.Val(unix.RLIMIT_NOFILE),
		vfork.Val(uintptr(unsafe.Pointer(limit))), vfork.Val(0))
	p.Call("umask", unix.SYS_UMASK, vfork.Val(0o022))
	if cp.Seccomp != nil {
		prog, err := cp.Seccomp.program()
		if err != nil {
			return err
		}
		fprog := &unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
		p.Keep(prog)
		p.Keep(fprog)
		p.Call("seccomp: install the filter", unix.SYS_SECCOMP, vfork.Val(unix.SECCOMP_SET_MODE_FILTER), vfork.Val(uintptr(cp.Seccomp.Flags)), vfork.Val(uintptr(unsafe.Pointer(fprog))))
	}
	return nil
}

// capabilities are the calling thread's permitted set and the last
// capability the kernel knows (the highest the bounding set can be asked
// about).
func capabilities() (uint64, int, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, 0, fmt.Errorf("get capabilities: %w", err)
	}
	permitted := uint64(data[0].Permitted) | uint64(data[1].Permitted)<<32
	last := 0
	for c := 1; c < 64; c++ {
		if _, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0); err != nil {
			break
		}
		last = c
	}
	return permitted, last, nil
}

// probeProc finds which of the entries masked or made read-only the
// kernel has, in the procfs the calling thread sees (the host's).
func probeProc() (procEntries, error) {
	var pe procEntries
	for _, name := range MaskedProc {
		exists, dir, err := statProc(name)
		if err != nil {
			return pe, err
		}
		if exists {
			pe.masked = append(pe.masked, procEntry{name: name, dir: dir})
		}
	}
	for _, name := range readonlyProc {
		exists, _, err := statProc(name)
		if err != nil {
			return pe, err
		}
		if exists {
			pe.readonly = append(pe.readonly, name)
		}
	}
	return pe, nil
}

// statProc says whether /proc/name exists and is a directory.
func statProc(name string) (exists, dir bool, err error) {
	var st unix.Stat_t
	switch err := unix.Lstat("/proc/"+name, &st); {
	case errors.Is(err, unix.ENOENT):
		return false, false, nil
	case err != nil:
		return false, false, &os.PathError{Op: "stat", Path: "/proc/" + name, Err: err}
	}
	return true, st.Mode&unix.S_IFMT == unix.S_IFDIR, nil
}

// Failure is err as the init would have sent it: its message kind and
// payload, which the parent decodes the same way whichever path built the
// container.
func Failure(err error) (byte, []byte) { return errorKind(err), encodeError(err) }
