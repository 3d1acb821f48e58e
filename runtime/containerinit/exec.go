package containerinit

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
)

// runExec is the side of a process entering a running container
// (MaybeInit, on its locked thread; runtime.Exec is the parent's, and says
// why it takes the steps it takes); it returns only on failure: its last
// step is execve.
func runExec(pipe int) error {
	payload, err := receiveConfig(pipe, "exec")
	if err != nil {
		return err
	}
	var cfg ExecConfig
	if err := decodeExecConfig(payload, &cfg); err != nil {
		return fmt.Errorf("decode the exec configuration: %w", err)
	}
	if cfg.ParentDeathSignal != 0 {
		// Should the parent have died before this, the wait for its
		// cgroup placement below fails on the closed pipe.
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(cfg.ParentDeathSignal), 0, 0, 0); err != nil {
			return fmt.Errorf("set parent-death signal: %w", err)
		}
	}
	// This thread's own filesystem context, without which the kernel
	// refuses to enter a mount namespace (see runtime.Exec).
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare the filesystem context: %w", err)
	}
	for _, j := range cfg.Joins {
		if err := unix.Setns(j.FD, nsFlags[j.Kind]); err != nil {
			return fmt.Errorf("enter %s namespace: %w", j.Kind, err)
		}
	}
	if err := cfg.Placement.join(pipe); err != nil {
		return err
	}
	// Looked up now, in the container's root: its own /etc/passwd and
	// /etc/group.
	id, err := identityOf(&cfg.Process)
	if err != nil {
		return err
	}
	prog, err := resolveProgram(&cfg.Process)
	if err != nil {
		return err
	}
	if cfg.Tty {
		if err := setupConsole(pipe, &cfg, id.uid); err != nil {
			return err
		}
	}
	return execProgram(pipe, prog, &cfg.Process, id)
}

// setupConsole makes a terminal of the container's own devpts instance
// (the container's /dev/ptmx, so that the program's tty is a /dev/pts/N it
// can see), gives its master to the parent and makes its other end the
// process's stdin, stdout, stderr and controlling terminal, owned by uid.
func setupConsole(pipe int, cfg *ExecConfig, uid uint32) error {
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open a terminal: /dev/ptmx: %w", err)
	}
	defer unix.Close(master)
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("open a terminal: unlock: %w", err)
	}
	// TIOCGPTPEER opens the other end through the master itself, never by
	// a path that something in the container could have replaced.
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(master), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY)
	if errno != 0 {
		return fmt.Errorf("open a terminal: open its other end: %w", errno)
	}
	peer := int(r)
	defer unix.Close(peer)
	if cfg.TtySize != nil {
		if err := unix.IoctlSetWinsize(master, unix.TIOCSWINSZ, cfg.TtySize); err != nil {
			return fmt.Errorf("open a terminal: set its size: %w", err)
		}
	}
	// The user's own terminal, as login gives it: writable by its owner.
	if err := unix.Fchown(peer, int(uid), -1); err != nil {
		return fmt.Errorf("open a terminal: chown: %w", err)
	}
	for fd := range 3 {
		if err := unix.Dup3(peer, fd, 0); err != nil {
			return fmt.Errorf("open a terminal: make it descriptor %d: %w", fd, err)
		}
	}
	// The process leads a session of its own (the parent's Setsid) and
	// has no controlling terminal yet: this one becomes it.
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("open a terminal: make it the controlling terminal: %w", err)
	}
	if err := linux.IgnoringEINTR(func() error {
		return unix.Sendmsg(pipe, []byte{MsgConsole}, unix.UnixRights(master), nil, 0)
	}); err != nil {
		return fmt.Errorf("send the terminal: %w", err)
	}
	return nil
}
