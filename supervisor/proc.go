package supervisor

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
)

// Process names a process across time: a pid alone may be reused by an
// unrelated process once the first one has died, so it is paired with the
// process's start time, which a reused pid cannot share.
type Process struct {
	Pid int `json:"pid"`
	// Start is field 22 of /proc/PID/stat: clock ticks after boot.
	Start uint64 `json:"start"`
}

// processOf returns pid with its start time.
func processOf(pid int) (Process, error) {
	st, err := linux.ReadStat(pid)
	if err != nil {
		return Process{}, err
	}
	return Process{Pid: pid, Start: st.Start}, nil
}

// Alive reports whether p is still the process that was recorded and has
// not ended. A zombie has ended: its parent just has not collected it yet
// (an orphaned container's parent may be an init that reaps slowly).
func (p Process) Alive() bool {
	if p.Pid <= 0 {
		return false
	}
	st, err := linux.ReadStat(p.Pid)
	return err == nil && st.Start == p.Start && st.State != 'Z' && st.State != 'X'
}

// Signal sends sig to p if p is still the recorded process; a process that
// is gone is not an error.
func (p Process) Signal(sig syscall.Signal) error {
	if p.Pid <= 0 {
		return nil
	}
	// FindProcess holds the process by a pidfd, so once the start time is
	// checked below the signal cannot reach another process that reused
	// the pid: the check comes after taking the handle, never before.
	proc, err := os.FindProcess(p.Pid)
	if err != nil {
		return fmt.Errorf("find pid %d: %w", p.Pid, err)
	}
	defer proc.Release()
	if !p.Alive() {
		return nil
	}
	if err := proc.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("send %v to pid %d: %w", sig, p.Pid, err)
	}
	return nil
}

// signalDiscarded reports whether sending sig to pid would change nothing
// because the process ignores the signal, or, for the first process of a
// pid namespace (pidNSInit), has no handler for it: the kernel discards a
// signal to a namespace's init that it does not catch, so waiting for such
// a process to stop is pointless.
func signalDiscarded(pid int, sig syscall.Signal, pidNSInit bool) (bool, error) {
	if sig == syscall.SIGKILL || sig == syscall.SIGSTOP {
		return false, nil
	}
	caught, ignored, err := signalMasks(pid)
	if err != nil {
		return false, err
	}
	bit := uint64(1) << (uint(sig) - 1)
	if ignored&bit != 0 {
		return true, nil
	}
	return pidNSInit && caught&bit == 0, nil
}

// signalMasks reads SigCgt and SigIgn from /proc/PID/status.
func signalMasks(pid int) (caught, ignored uint64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read signal masks of pid %d: %w", pid, err)
	}
	defer f.Close()
	var seen int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "SigCgt" && key != "SigIgn") {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(value), 16, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("read signal masks of pid %d: %s: %w", pid, key, err)
		}
		if key == "SigCgt" {
			caught = mask
		} else {
			ignored = mask
		}
		seen++
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("read signal masks of pid %d: %w", pid, err)
	}
	if seen != 2 {
		return 0, 0, fmt.Errorf("read signal masks of pid %d: SigCgt or SigIgn missing from /proc/%d/status", pid, pid)
	}
	return caught, ignored, nil
}

// signalName is "SIGTERM" for 15.
func signalName(sig int) string {
	if n := unix.SignalName(unix.Signal(sig)); n != "" {
		return n
	}
	return fmt.Sprintf("signal %d", sig)
}
