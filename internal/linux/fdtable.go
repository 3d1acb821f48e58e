package linux

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// ReserveDescriptors grows the process's descriptor table to hold at least
// n descriptors, at once. The kernel grows a table by doubling it when a
// new descriptor does not fit, and in a process with more than one thread
// (every Go program) each growth waits for an RCU grace period, several
// milliseconds, during which every thread that opens anything waits too: a
// supervisor starting fifty containers, each with its pipes, pidfds and
// cgroup files, grew its table three times in the middle of the start. A
// table never shrinks, so one growth early is the only one.
func ReserveDescriptors(n int) error {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("reserve %d descriptors: %w", n, err)
	}
	if uint64(n) > lim.Cur {
		n = int(lim.Cur)
	}
	if n <= 64 {
		// The table every process starts with.
		return nil
	}
	// A descriptor of its own to copy, whatever 0, 1 and 2 are.
	null, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("reserve %d descriptors: %w", n, err)
	}
	defer unix.Close(null)
	// The lowest free descriptor from n-1 up: n-1 itself in a table
	// that has not grown that far, which makes it grow.
	fd, err := unix.FcntlInt(uintptr(null), unix.F_DUPFD_CLOEXEC, n-1)
	if err != nil {
		return fmt.Errorf("reserve %d descriptors: %w", n, err)
	}
	return unix.Close(fd)
}
