package containerinit

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// dropPrivileges takes the calling thread to identity id with the
// capabilities in keep (bit N for capability N). It works on this thread
// only (raw syscalls, not Go's all-threads Setuid): the init execs from this same
// locked thread, and execve gives the new program this thread's
// credentials while the other threads of the Go runtime die.
//
// The order matters: the bounding set can only be reduced while the thread
// still has CAP_SETPCAP, which setresuid to a non-zero uid takes away, and
// the identity can only change while it has CAP_SETGID and CAP_SETUID, so
// the effective and permitted sets are narrowed last (a root container
// with cap_drop: [ALL] would otherwise lose the right to change its
// groups). execve gives uid 0 a permitted set equal to the bounding set; a
// non-root user gets none.
func dropPrivileges(id identity, keep uint64) error {
	for c := uint(0); c < 64; c++ {
		if keep&(1<<c) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			if errors.Is(err, unix.EINVAL) {
				break // past the last capability this kernel knows
			}
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	// x/sys's Setgroups is this thread's own call (syscall's would be
	// every thread's), with the gid_t width of each architecture.
	groups := make([]int, len(id.groups))
	for i, g := range id.groups {
		groups[i] = int(g)
	}
	if err := unix.Setgroups(groups); err != nil {
		return fmt.Errorf("set supplementary groups %v: %w", id.groups, err)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(id.gid), uintptr(id.gid), uintptr(id.gid)); e != 0 {
		return fmt.Errorf("set group %d: %w", id.gid, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(id.uid), uintptr(id.uid), uintptr(id.uid)); e != 0 {
		return fmt.Errorf("set user %d: %w", id.uid, e)
	}
	// Inheritable capabilities outside the bounding set would still reach
	// a root program through execve (root's files count as having every
	// inheritable bit): clear them.
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("get capabilities: %w", err)
	}
	for i := range data {
		data[i].Inheritable = 0
		data[i].Effective &= uint32(keep >> (32 * i))
		data[i].Permitted &= uint32(keep >> (32 * i))
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("set capabilities: %w", err)
	}
	// No setuid binary or file capability can give the program more than
	// it starts with.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	return nil
}
