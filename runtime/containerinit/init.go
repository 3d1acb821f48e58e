package containerinit

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// closeRangeCloexec is CLOSE_RANGE_CLOEXEC from linux/close_range.h.
const closeRangeCloexec = 1 << 2

// nsFlags are the setns types of the namespaces a container's init or an
// entering process may be given to join, by their name in /proc/PID/ns.
var nsFlags = map[string]int{
	"net":    unix.CLONE_NEWNET,
	"ipc":    unix.CLONE_NEWIPC,
	"uts":    unix.CLONE_NEWUTS,
	"cgroup": unix.CLONE_NEWCGROUP,
	"mnt":    unix.CLONE_NEWNS,
}

// MaybeInit returns at once unless the process is a container's init
// started by runtime.Start, or a process entering a container started by
// runtime.Exec;
// then it sets the container (or the entry) up and execs the user's
// program, and never returns. main calls it before anything else.
func MaybeInit() {
	if len(os.Args) < 2 || (os.Args[1] != InitArg && os.Args[1] != ExecArg) {
		return
	}
	// The init's work is done on one thread that stays locked until
	// execve. setns, sethostname, unshare(CLONE_NEWCGROUP), credentials
	// and capabilities are per thread in Linux, and execve keeps the
	// calling thread's (the other threads of the runtime die there), so
	// what the user's program gets is exactly what this thread set up.
	// Never unlocking also means the Go scheduler never reuses the thread
	// for another goroutine, which would otherwise run in the joined
	// namespaces.
	runtime.LockOSThread()
	// Not dumpable until execve (which makes the program dumpable again).
	// Until then this is the host's stack binary inside the container's
	// namespaces: once it has the container's identity and capabilities, a
	// process of the container (an exec's container; an init's, for a
	// container without a pid namespace of its own) would pass the kernel's
	// ptrace check on it, and /proc/PID/exe would hand it the host's
	// binary to open, the way runc's CVE-2019-5736 was reached.
	err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	switch {
	case err != nil:
		err = fmt.Errorf("make the process not dumpable: %w", err)
	case os.Args[1] == InitArg:
		err = runInit(PipeFD)
	default:
		err = runExec(PipeFD)
	}
	if serr := Send(PipeFD, errorKind(err), encodeError(err)); serr != nil {
		fmt.Fprintf(os.Stderr, "stack init: %v (and reporting it failed: %v)\n", err, serr)
	}
	os.Exit(1)
}

// runInit returns only on failure: its last step is execve.
func runInit(pipe int) error {
	payload, err := receiveConfig(pipe, "init")
	if err != nil {
		return err
	}
	var cfg Config
	if err := decodeConfig(payload, &cfg); err != nil {
		return fmt.Errorf("decode the init configuration: %w", err)
	}
	// Device nodes and directories get exactly the modes asked for; the
	// program gets the usual 022 back before exec.
	unix.Umask(0)
	// Joined before any mount: /sys must be mounted from inside the
	// network namespace whose devices it is to show.
	for _, j := range cfg.Joins {
		if err := unix.Setns(j.FD, nsFlags[j.Kind]); err != nil {
			return fmt.Errorf("join %s namespace: %w", j.Kind, err)
		}
	}
	if cfg.NewNet {
		// A new network namespace starts with lo down; programs expect
		// to reach 127.0.0.1, as they do under runc and Docker.
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	if err := buildRootfs(&cfg); err != nil {
		return err
	}
	if cfg.Hostname != "" {
		if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", cfg.Hostname, err)
		}
	}
	prog, err := resolveProgram(&cfg.Process)
	if err != nil {
		return err
	}
	if cfg.Linked {
		// The parent moves the interface in and configures it once this
		// process, and so its namespace, exists; the rootfs is built
		// meanwhile (sysfs lists the namespace's devices as they come).
		// Waited for before the placement, so the program never runs
		// before its eth0 is there.
		if kind, _, err := Receive(pipe); err != nil || kind != MsgLinked {
			return fmt.Errorf("wait for the network interface: message %q, %v", kind, err)
		}
	}
	if err := cfg.Placement.join(pipe); err != nil {
		return err
	}
	if cfg.NewCgroup {
		// After placement, so that the container's cgroup is the root of
		// its cgroup namespace.
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("new cgroup namespace: %w", err)
		}
	}
	// Looked up in the container's root, as an exec'd process's user is,
	// once the init is in the container's cgroup: a large /etc/group is
	// read at the container's expense.
	id, err := identityOf(&cfg.Process)
	if err != nil {
		return err
	}
	return execProgram(pipe, prog, &cfg.Process, id)
}

// The tail that the init and every exec'd process share: resolveProgram
// and identityOf, then (the caller's own steps in between) execProgram.
// One path, so that a process started by `stack exec` or a health check
// runs as the same user with the same groups, and is confined exactly as
// the container's PID 1 is.

// resolveProgram enters the process's workdir and finds its program in the
// container's PATH. Its failures are a *CommandError: the program cannot
// be run, as opposed to a container that could not be set up.
func resolveProgram(p *Process) (string, error) {
	if err := unix.Chdir(p.Workdir); err != nil {
		return "", &commandError{err: fmt.Errorf("workdir %q: %w", p.Workdir, err)}
	}
	prog, err := lookPath(p.Args[0], p.Env)
	if err != nil {
		return "", &commandError{err: err, program: true}
	}
	return prog, nil
}

// execProgram drops to the process's identity id and confinement and execs
// prog; it returns only on failure. The order matters:
//
//  1. Descriptors close on exec, the pipe included.
//  2. A new session keyring, while the process may still call keyctl:
//     keyrings are not namespaced, and the one inherited is the host's.
//  3. Identity and capabilities, then no_new_privs (dropPrivileges).
//  4. The parent-death signal, which the change of identity cleared, and
//     the open files limit (openFilesLimit).
//  5. The seccomp filter last, right before execve, so that nothing the
//     setup needs has to be allowed by the profile.
func execProgram(pipe int, prog string, p *Process, id identity) error {
	// Inherited descriptors (the pipe, namespace handles, anything the
	// parent leaked) close on exec; the pipe stays usable for an execve
	// failure, and its closing tells the parent exec succeeded.
	if err := unix.CloseRange(3, ^uint(0), closeRangeCloexec); err != nil {
		return fmt.Errorf("mark descriptors close-on-exec: %w", err)
	}
	// A NULL name asks for a new anonymous keyring, which nothing else
	// can join; x/sys's wrapper would pass "" and join one by that name.
	if _, _, e := unix.RawSyscall(unix.SYS_KEYCTL, unix.KEYCTL_JOIN_SESSION_KEYRING, 0, 0); e != 0 && e != unix.ENOSYS {
		return fmt.Errorf("join a new session keyring: %w", e)
	}
	if err := dropPrivileges(id, p.Caps); err != nil {
		return err
	}
	if p.ParentDeathSignal != 0 {
		// Changing credentials cleared the signal set at clone time. If
		// the parent died in between, the send below fails on the closed
		// pipe and the process exits instead of running unwatched.
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(p.ParentDeathSignal), 0, 0, 0); err != nil {
			return fmt.Errorf("set parent-death signal: %w", err)
		}
	}
	if err := openFilesLimit(); err != nil {
		return err
	}
	unix.Umask(0o022)
	if err := Send(pipe, MsgExec, nil); err != nil {
		return fmt.Errorf("report exec: %w", err)
	}
	if p.Seccomp != nil {
		// no_new_privs is set, so an unprivileged thread may install it.
		if err := p.Seccomp.install(); err != nil {
			return err
		}
	}
	err := unix.Exec(prog, p.Args, p.Env)
	return &commandError{err: fmt.Errorf("exec %q: %w", p.Args[0], err), program: true}
}

// openFilesLimit gives the program an open files limit whose soft value is
// the hard one: the supervisor's own, as a container runner's daemon passes
// its limit on (Docker's and Podman's containers get theirs), whatever soft
// limit the shell that ran stack had. syscall.Setrlimit, not x/sys's: it
// also tells the Go runtime not to put back, at execve, the soft limit
// this process started with (Go raises its own soft limit at start and
// restores it for the programs it executes).
func openFilesLimit() error {
	lim, err := programOpenFilesLimit()
	if err != nil {
		return err
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, lim); err != nil {
		return fmt.Errorf("set the open files limit to %d: %w", lim.Max, err)
	}
	return nil
}

// programOpenFilesLimit is the open files limit a program gets: the
// calling process's hard limit, as soft and hard limit.
func programOpenFilesLimit() (*syscall.Rlimit, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil, fmt.Errorf("get the open files limit: %w", err)
	}
	lim.Cur = lim.Max
	return &lim, nil
}

// lookPath finds name in the container's PATH when it has no slash; a path
// is left for execve to judge.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	var path string
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + name
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Mode&0o111 != 0 {
			return p, nil
		}
	}
	return "", &errnoError{msg: fmt.Sprintf("exec %q: executable file not found in $PATH", name), errno: unix.ENOENT}
}

// loopbackUp sets the IFF_UP flag of lo in the init's network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bring lo up: socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: get flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: set flags: %w", err)
	}
	return nil
}
