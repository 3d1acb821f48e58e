package seccomp

//go:generate go run ./internal/gensyscalls -o syscalls_gen.go

// syscallTable is one architecture's syscall numbers, from the kernel's
// tables by way of github.com/elastic/go-seccomp-bpf/arch
// (syscalls_gen.go). They are slices of constants, which the linker lays
// out: that package's maps of twenty architectures would cost every
// process of stack a third of a millisecond at its start.
type syscallTable struct {
	// auditArch is the architecture's AUDIT_ARCH_* value, which the
	// kernel puts in seccomp_data.arch.
	auditArch uint32
	syscalls  []syscallNumber // sorted by name
}

type syscallNumber struct {
	name string
	nr   uint32
}

// number is the syscall number of name, and false if this architecture
// has no such syscall. The binary search is written out: with
// slices.BinarySearchFunc, whose comparison is a call, it takes half as
// long again (some 60 ns rather than 40 on x86_64's table, where a map
// took 10), and Docker's profile has some 400 names to look up in each
// of two tables.
func (t *syscallTable) number(name string) (uint32, bool) {
	s := t.syscalls
	lo, hi := 0, len(s)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if s[mid].name < name {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(s) && s[lo].name == name {
		return s[lo].nr, true
	}
	return 0, false
}
