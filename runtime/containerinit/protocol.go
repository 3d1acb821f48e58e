package containerinit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
)

// The parent and the init talk over one SOCK_SEQPACKET socket pair, so that
// every write is one message and no framing is needed. The init's end is
// its descriptor PipeFD; it becomes close-on-exec, so once execve
// succeeds the parent reads end-of-file.
//
//	parent -> init: MsgConfig + Config (EncodeConfig, config.go)
//	parent -> init: MsgLinked           (only with Config.Linked: eth0 is
//	                                     in the init's namespace and
//	                                     configured)
//	init -> parent: MsgReady            (only when the parent is to move it
//	                                     into a cgroup: v2, see Placement)
//	parent -> init: MsgGo               (the init is now in its cgroup)
//	init -> parent: MsgExec             (execve comes next)
//	init -> parent: MsgError + errno + text, then the init exits
//	                (MsgCommandError when the workdir is missing,
//	                MsgProgramError when the program is missing or
//	                cannot be executed)
//
// An exec'd process speaks the same protocol with an ExecConfig
// (EncodeExecConfig), and, when
// it was asked for a terminal, sends its master before MsgExec:
//
//	exec -> parent: MsgConsole + the pty master as SCM_RIGHTS
const (
	MsgConfig       byte = 'C'
	MsgLinked       byte = 'L'
	MsgReady        byte = 'R'
	MsgGo           byte = 'G'
	MsgConsole      byte = 'T'
	MsgExec         byte = 'X'
	MsgError        byte = 'E'
	MsgCommandError byte = 'W'
	MsgProgramError byte = 'P'
)

// PipeFD is where the parent puts the pipe (exec.Cmd's ExtraFiles[0]);
// the descriptors the configuration names follow it.
const PipeFD = 3

// InitArg and ExecArg are the hidden arguments with which the parent
// starts the init program as a container's init, or as a process entering
// a running container (MaybeInit).
const (
	InitArg = "__stack-container-init__"
	ExecArg = "__stack-container-exec__"
)

// Config is what a container's init needs to know: the container's spec
// after the parent resolved the rootfs and opened the namespaces to join.
type Config struct {
	Process
	Hostname string // empty: keep the hostname (uts shared or joined)
	// Lower is the overlay's lowerdir (the rootfs directory, or an
	// image's layers top first, ':'-separated); Layer the container's
	// layer dir.
	Lower, Layer string
	ReadOnly     bool
	Mounts       []Mount
	// Joins are namespaces to enter, as descriptors inherited by the init.
	Joins []NsJoin
	// NewNet and NewUser say which namespaces the clone created, which
	// decides how /sys and /dev are made.
	NewNet, NewUser bool
	// Linked has the init wait for MsgLinked before it goes on to its
	// placement: the parent moves the container's interface into the new
	// network namespace and configures it there from outside, which needs
	// the namespace, and so the init, to exist.
	Linked    bool
	NewCgroup bool
	Placement
}

// ExecConfig is what a process entering a running container needs: the
// exec's spec after the parent opened the namespaces.
type ExecConfig struct {
	Process
	Placement
	Joins   []NsJoin
	Tty     bool
	TtySize *unix.Winsize
}

// Process is what the container's PID 1 and every process exec'd into it
// run as: their program, identity and confinement, applied by execProgram.
type Process struct {
	Args    []string
	Env     []string
	Workdir string
	// User, when not empty, is uid[:gid] or user[:group], looked up in
	// the container's own /etc/passwd and /etc/group once the process is
	// in the container's root; it gives the uid, the gid and the
	// supplementary groups (identityOf). Empty, the process runs as UID
	// and GID with GID its only group.
	User     string
	UID, GID uint32
	// Caps is the capability set, bit N for capability N.
	Caps uint64
	// Seccomp is the filter; nil runs the program without one.
	Seccomp *Filter
	// ParentDeathSignal is set again after the credentials change, which
	// clears the one given at clone time.
	ParentDeathSignal syscall.Signal
}

// Mount is a bind mount from the host into the container.
type Mount struct {
	Source, Target string
	ReadOnly       bool
	// CopyUp, for a named volume: when Source is an empty directory, what
	// the rootfs holds at Target is copied into it before it is mounted
	// (see copyup.go).
	CopyUp bool
}

// NsJoin is a namespace to enter, inherited as descriptor FD.
type NsJoin struct {
	Kind string // "net", "ipc", "uts"; for an exec also "cgroup", "mnt"
	FD   int
}

// receiveConfig reads the MsgConfig that the parent queued before
// starting this process and returns its payload (config.go); what names
// it in errors.
func receiveConfig(pipe int, what string) ([]byte, error) {
	kind, payload, err := Receive(pipe)
	if err != nil {
		return nil, fmt.Errorf("read the %s configuration: %w", what, err)
	}
	if kind != MsgConfig {
		return nil, fmt.Errorf("read the %s configuration: unexpected message %q", what, kind)
	}
	return payload, nil
}

// Send writes one message.
func Send(fd int, kind byte, payload []byte) error {
	msg := append([]byte{kind}, payload...)
	if err := fitMessage(fd, len(msg)); err != nil {
		return err
	}
	_, err := linux.IgnoringEINTRN(func() (int, error) { return unix.Write(fd, msg) })
	return err
}

// messageSlack is what the kernel's accounting of one message takes from
// a socket's send buffer besides the message itself, with room to spare.
const messageSlack = 64 << 10

// fitMessage lets the socket fd send one message of n bytes. A
// SOCK_SEQPACKET message must fit the send buffer whole, and the default
// (net.core.wmem_default, some 208 KiB) is less than a configuration
// whose arguments and environment come near execve's own limits (128 KiB
// each, a few MiB in all) needs: such a send would fail with EMSGSIZE.
// SO_SNDBUFFORCE passes net.core.wmem_max, and needs CAP_NET_ADMIN, which
// the supervisor has.
func fitMessage(fd, n int) error {
	have, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF)
	if err == nil && n+messageSlack <= have {
		return nil
	}
	// The kernel doubles the value asked for, for its bookkeeping.
	want := (n + messageSlack) / 2
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, want); err != nil {
		return fmt.Errorf("make room for a message of %d bytes (SO_SNDBUFFORCE): %w", n, err)
	}
	return nil
}

// Receive reads one message whatever its size; io.EOF when the other end
// is closed (for the parent: the init has exec'd or died).
func Receive(fd int) (byte, []byte, error) {
	// MSG_PEEK|MSG_TRUNC returns the size of the next message without
	// consuming it, so the buffer is exactly as large as needed.
	size, err := linux.IgnoringEINTRN(func() (int, error) {
		n, _, err := unix.Recvfrom(fd, nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		return n, err
	})
	if err != nil {
		return 0, nil, err
	}
	if size == 0 {
		return 0, nil, io.EOF
	}
	buf := make([]byte, size)
	n, err := linux.IgnoringEINTRN(func() (int, error) { return unix.Read(fd, buf) })
	if err != nil {
		return 0, nil, err
	}
	if n == 0 {
		return 0, nil, io.EOF
	}
	return buf[0], buf[1:n], nil
}

// encodeError turns a failure into the payload of its message, keeping
// the errno so that the parent's error still matches
// errors.Is(err, fs.ErrNotExist).
func encodeError(err error) []byte {
	var errno syscall.Errno
	errors.As(err, &errno)
	payload := binary.LittleEndian.AppendUint32(nil, uint32(errno))
	return append(payload, err.Error()...)
}

// DecodeError reads the payload of a MsgError, MsgCommandError or
// MsgProgramError: the failure's errno (0 without one) and its text.
func DecodeError(payload []byte) (syscall.Errno, string, error) {
	if len(payload) < 4 {
		return 0, "", fmt.Errorf("init sent a malformed error message (%d bytes)", len(payload))
	}
	return syscall.Errno(binary.LittleEndian.Uint32(payload)), string(payload[4:]), nil
}

// errnoError is a failure of the init's own making that still carries an
// errno for the parent's errors.Is.
type errnoError struct {
	msg   string
	errno syscall.Errno
}

func (e *errnoError) Error() string { return e.msg }
func (e *errnoError) Unwrap() error { return e.errno }

// commandError is a failure to run the program itself, inside a container
// that was set up: its workdir or program is missing, or the program
// cannot be executed. It crosses the pipe as its own message, which the
// parent turns into a runtime.CommandError.
type commandError struct {
	err error
	// program: the program is at fault, not the workdir.
	program bool
}

func (e *commandError) Error() string { return e.err.Error() }
func (e *commandError) Unwrap() error { return e.err }

// errorKind is the message that carries err across the pipe.
func errorKind(err error) byte {
	var ce *commandError
	switch {
	case errors.As(err, &ce) && ce.program:
		return MsgProgramError
	case errors.As(err, &ce):
		return MsgCommandError
	}
	return MsgError
}
