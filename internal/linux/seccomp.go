package linux

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// InstallSeccompFilter loads the classic BPF program prog with the
// SECCOMP_FILTER_FLAG_* bits flags on the calling thread; the kernel
// refuses it unless the thread has no_new_privs set or holds
// CAP_SYS_ADMIN. Children and an execve inherit it, and nothing can
// remove it. Here rather than in the seccomp package so that the
// container's init, which must not link the compiler, shares it.
func InstallSeccompFilter(flags uint, prog []unix.SockFilter) error {
	if len(prog) == 0 || len(prog) > 0xffff {
		return fmt.Errorf("seccomp: install a program of %d instructions", len(prog))
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	_, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&fprog)))
	if e != 0 {
		return fmt.Errorf("seccomp: install the filter: %w", e)
	}
	return nil
}
