package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
	"github.com/stack-containers/stack/network"
	"github.com/stack-containers/stack/seccomp"
)

// The parent and the init talk over one SOCK_SEQPACKET socket pair, so that
// every write is one message and no framing is needed. The init's end is
// its descriptor initPipeFD; it becomes close-on-exec, so once execve
// succeeds the parent reads end-of-file.
//
//	parent -> init: msgConfig + JSON initConfig
//	parent -> init: msgLinked           (only with an interface: it has been
//	                                     made in the init's namespace)
//	init -> parent: msgReady            (only when the parent is to move it
//	                                     into a cgroup: v2, see placement)
//	parent -> init: msgGo               (the init is now in its cgroup)
//	init -> parent: msgExec             (execve comes next)
//	init -> parent: msgError + errno + text, then the init exits
//	                (msgCommandError when the workdir is missing,
//	                msgProgramError when the program is missing or
//	                cannot be executed)
//
// An exec'd process (exec.go) speaks the same protocol with an execConfig,
// and, when it was asked for a terminal, sends its master before msgExec:
//
//	exec -> parent: msgConsole + the pty master as SCM_RIGHTS
const (
	msgConfig       byte = 'C'
	msgLinked       byte = 'L'
	msgReady        byte = 'R'
	msgGo           byte = 'G'
	msgConsole      byte = 'T'
	msgExec         byte = 'X'
	msgError        byte = 'E'
	msgCommandError byte = 'W'
	msgProgramError byte = 'P'
)

// initPipeFD is where exec.Cmd puts ExtraFiles[0]; the namespaces to join
// follow it.
const initPipeFD = 3

// initConfig is what the init needs to know; it is Spec after the parent
// resolved the rootfs and opened the namespaces to join.
type initConfig struct {
	process
	Hostname string // empty: keep the hostname (uts shared or joined)
	// Lower is the overlay's lowerdir (the rootfs directory, or an
	// image's layers top first, ':'-separated); Layer the container's
	// layer dir.
	Lower, Layer string
	ReadOnly     bool
	Mounts       []Mount
	// Joins are namespaces to enter, as descriptors inherited by the init.
	Joins []nsJoin
	// NewNet and NewUser say which namespaces the clone created, which
	// decides how /sys and /dev are made.
	NewNet, NewUser bool
	// Interface is configured as eth0 once the parent has moved it in.
	Interface *network.Interface
	NewCgroup bool
	placement
}

// process is what the container's PID 1 and every process exec'd into it
// run as: their program, identity and confinement, applied by execProgram.
type process struct {
	Args     []string
	Env      []string
	Workdir  string
	UID, GID uint32
	// Caps is the capability set, bit N for capability N.
	Caps uint64
	// Seccomp is the filter; nil runs the program without one.
	Seccomp *seccomp.Program
	// ParentDeathSignal is set again after the credentials change, which
	// clears the one given at clone time.
	ParentDeathSignal syscall.Signal
}

type nsJoin struct {
	Kind string // "net", "ipc" or "uts"
	FD   int
}

// send writes one message.
func send(fd int, kind byte, payload []byte) error {
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

// receive reads one message whatever its size; io.EOF when the other end
// is closed (for the parent: the init has exec'd or died).
func receive(fd int) (byte, []byte, error) {
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

// encodeError turns an init failure into a msgError payload, keeping the
// errno so that the parent's error still matches errors.Is(err, fs.ErrNotExist).
func encodeError(err error) []byte {
	var errno syscall.Errno
	errors.As(err, &errno)
	payload := binary.LittleEndian.AppendUint32(nil, uint32(errno))
	return append(payload, err.Error()...)
}

// initError is a failure reported by the init, rebuilt in the parent.
type initError struct {
	msg   string
	errno syscall.Errno
}

func decodeError(payload []byte) error {
	if len(payload) < 4 {
		return fmt.Errorf("init sent a malformed error message (%d bytes)", len(payload))
	}
	return &initError{errno: syscall.Errno(binary.LittleEndian.Uint32(payload)), msg: string(payload[4:])}
}

func (e *initError) Error() string { return e.msg }

// CommandError is a failure to run the program itself, inside a container
// that was set up: its workdir or program is missing, or the program
// cannot be executed.
type CommandError struct {
	err error
	// program: the program is at fault, not the workdir.
	program bool
}

func (e *CommandError) Error() string { return e.err.Error() }
func (e *CommandError) Unwrap() error { return e.err }

// NotFound reports whether the program does not exist (`stack exec`
// exits 127 for it, 126 for any other CommandError).
func (e *CommandError) NotFound() bool { return e.program && errors.Is(e.err, fs.ErrNotExist) }

// errorKind is the message that carries err across the pipe.
func errorKind(err error) byte {
	var ce *CommandError
	switch {
	case errors.As(err, &ce) && ce.program:
		return msgProgramError
	case errors.As(err, &ce):
		return msgCommandError
	}
	return msgError
}

// decodeFailure rebuilds a failure sent as kind.
func decodeFailure(kind byte, payload []byte) error {
	err := decodeError(payload)
	if _, ok := err.(*initError); ok && kind != msgError {
		return &CommandError{err: err, program: kind == msgProgramError}
	}
	return err
}

func (e *initError) Unwrap() error {
	if e.errno == 0 {
		return nil
	}
	return e.errno
}
