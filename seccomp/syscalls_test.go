package seccomp

import (
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestSyscallTables fails when syscalls_gen.go no longer holds what
// go-seccomp-bpf/arch does (after an update of that module, run
// `go generate ./seccomp`), or when the lookup misses a syscall.
func TestSyscallTables(t *testing.T) {
	sources := map[specs.Arch]*arch.Info{
		specs.ArchX86_64:  arch.X86_64,
		specs.ArchX86:     arch.I386,
		specs.ArchAARCH64: arch.AARCH64,
		specs.ArchARM:     arch.ARM,
	}
	if len(tables) != len(sources) {
		t.Errorf("%d tables, %d sources to check them against", len(tables), len(sources))
	}
	for a, tb := range tables {
		info, ok := sources[a]
		if !ok {
			t.Errorf("%s: no source to check the table against", a)
			continue
		}
		if tb.auditArch != uint32(info.ID) {
			t.Errorf("%s: audit arch %#x, %s's is %#x", a, tb.auditArch, info.Name, uint32(info.ID))
		}
		// The tables apply no mask to the numbers.
		if info.SeccompMask != 0 {
			t.Errorf("%s: %s's numbers have a mask, %#x", a, info.Name, info.SeccompMask)
		}
		if len(tb.syscalls) != len(info.SyscallNames) {
			t.Errorf("%s: %d syscalls, %s has %d", a, len(tb.syscalls), info.Name, len(info.SyscallNames))
		}
		for i, s := range tb.syscalls {
			if i > 0 && tb.syscalls[i-1].name >= s.name {
				t.Errorf("%s: %q follows %q: the table is not sorted by name", a, s.name, tb.syscalls[i-1].name)
			}
			want, ok := info.SyscallNames[s.name]
			if !ok {
				t.Errorf("%s: %s (%d) is not a syscall of %s", a, s.name, s.nr, info.Name)
			} else if s.nr != uint32(want) {
				t.Errorf("%s: %s is %d, in %s %d", a, s.name, s.nr, info.Name, want)
			}
		}
		for name, want := range info.SyscallNames {
			if got, ok := tb.number(name); !ok || got != uint32(want) {
				t.Errorf("%s: number(%q) = %d, %t; want %d", a, name, got, ok, want)
			}
		}
		for _, name := range []string{"", "no_such_syscall", "~"} {
			if got, ok := tb.number(name); ok {
				t.Errorf("%s: number(%q) = %d, want none", a, name, got)
			}
		}
	}
	if x32Bit != arch.X32.SeccompMask {
		t.Errorf("x32Bit is %#x, %s's mask %#x", x32Bit, arch.X32.Name, arch.X32.SeccompMask)
	}
}
