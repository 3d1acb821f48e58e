package runtime

import (
	"errors"
	"io/fs"
	"syscall"

	"github.com/stack-containers/stack/runtime/containerinit"
)

// The messages between the parent and the init, and the configuration
// they carry, are containerinit's (protocol.go there); this is the
// parent's reading of the failures the init reports.

// initPipeFD is the init's descriptor for the pipe; the descriptors the
// configuration names follow it.
const initPipeFD = containerinit.PipeFD

// initError is a failure reported by the init, rebuilt in the parent.
type initError struct {
	msg   string
	errno syscall.Errno
}

func (e *initError) Error() string { return e.msg }

func (e *initError) Unwrap() error {
	if e.errno == 0 {
		return nil
	}
	return e.errno
}

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

// decodeFailure rebuilds a failure the init sent as kind.
func decodeFailure(kind byte, payload []byte) error {
	errno, msg, err := containerinit.DecodeError(payload)
	if err != nil {
		return err
	}
	ierr := &initError{errno: errno, msg: msg}
	if kind != containerinit.MsgError {
		return &CommandError{err: ierr, program: kind == containerinit.MsgProgramError}
	}
	return ierr
}
