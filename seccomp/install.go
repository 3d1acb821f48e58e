package seccomp

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Install loads the program on the calling thread; the kernel refuses it
// unless the thread has no_new_privs set or holds CAP_SYS_ADMIN. Children
// and an execve inherit it, and nothing can remove it.
func (p *Program) Install() error {
	if len(p.Filter) == 0 {
		return fmt.Errorf("seccomp: install an empty program")
	}
	fprog := unix.SockFprog{Len: uint16(len(p.Filter)), Filter: &p.Filter[0]}
	_, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(p.Flags), uintptr(unsafe.Pointer(&fprog)))
	if e != 0 {
		return fmt.Errorf("seccomp: install the filter: %w", e)
	}
	return nil
}
