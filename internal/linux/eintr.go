// Package linux holds the syscall and /proc helpers that several packages
// need: retrying on EINTR (eintr.go), polling the kernel with growing
// pauses (backoff.go), /proc/PID/stat (proc.go) and the mount table
// (mountinfo.go). Their errors name the file they read.
package linux

import (
	"errors"

	"golang.org/x/sys/unix"
)

// IgnoringEINTR calls fn until it returns anything but EINTR. Go's runtime
// sends signals (SIGURG for preemption) that interrupt slow syscalls.
func IgnoringEINTR(fn func() error) error {
	for {
		err := fn()
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// IgnoringEINTRN is IgnoringEINTR for calls that also return a count.
func IgnoringEINTRN(fn func() (int, error)) (int, error) {
	for {
		n, err := fn()
		if !errors.Is(err, unix.EINTR) {
			return n, err
		}
	}
}
