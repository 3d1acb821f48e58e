package seccomp

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/capability"
)

// allCaps is every capability, for the profile's rules that need one.
func allCaps() []string { return capability.Names() }

// candidates are argument values at the edges of a check: the value, one
// either side, its high word changed, and for a masked check the wanted
// bits with each masked bit flipped and the unmasked ones set.
func candidates(a specs.LinuxSeccompArg) []uint64 {
	v := a.Value
	c := []uint64{v, v - 1, v + 1, v ^ 1<<32, v + 1<<32, v - 1<<32, v | 0xffffffff_00000000, uint64(uint32(v))}
	if a.Op == specs.OpMaskedEqual {
		w := a.ValueTwo
		c = append(c, w, w|^v, w&v, ^w)
		for bit := range 64 {
			if v&(1<<bit) != 0 {
				c = append(c, w^(1<<bit))
			}
		}
	}
	return c
}

// satisfying is a value for which the check holds, as far as one exists.
func satisfying(a specs.LinuxSeccompArg) uint64 {
	switch a.Op {
	case specs.OpNotEqual, specs.OpGreaterThan:
		return a.Value + 1
	case specs.OpLessThan:
		return a.Value - 1
	case specs.OpMaskedEqual:
		return a.ValueTwo
	}
	return a.Value
}

// argVectors are the argument lists to try for one syscall's rules.
func argVectors(rng *rand.Rand, rules []specs.LinuxSyscall) [][6]uint64 {
	out := [][6]uint64{{}, {^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}}
	for range 2 {
		var v [6]uint64
		for i := range v {
			v[i] = rng.Uint64()
		}
		out = append(out, v)
	}
	for _, r := range rules {
		for _, a := range r.Args {
			for _, c := range candidates(a) {
				// Alone, and with every other check of its rule holding.
				var alone, with [6]uint64
				for _, b := range r.Args {
					with[b.Index] = satisfying(b)
				}
				alone[a.Index], with[a.Index] = c, c
				out = append(out, alone, with)
			}
		}
	}
	return out
}

// checkEquivalent runs the linear reference and the compiled program over
// every syscall number up to 1023, some above, the x32 range, for each
// architecture the program knows and some it does not, with arguments at
// the edges of every check.
func checkEquivalent(t *testing.T, ls *specs.LinuxSeccomp, goarch string) {
	t.Helper()
	want, err := compileLinear(ls, goarch)
	if err != nil {
		t.Fatalf("%s: reference: %v", goarch, err)
	}
	got, err := compile(ls, goarch)
	if err != nil {
		t.Fatalf("%s: %v", goarch, err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	arches := []uint32{0, 0xffffffff, uint32(arch.ARM.ID) ^ 1}
	for _, tb := range tables {
		arches = append(arches, tb.auditArch)
	}
	var nrs []uint32
	for n := range uint32(1024) {
		nrs = append(nrs, n, x32Bit|n)
	}
	nrs = append(nrs, 1100, 4095, 4096, 0xffff, x32Bit-1, 0x3ffff, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff)
	for _, a := range arches {
		// The rules that name each number, in this arch's table.
		byNr := map[uint32][]specs.LinuxSyscall{}
		for _, tb := range tables {
			if tb.auditArch != a {
				continue
			}
			for _, s := range ls.Syscalls {
				for _, name := range s.Names {
					if n, ok := tb.number(name); ok {
						byNr[n] = append(byNr[n], s)
					}
				}
			}
		}
		for _, n := range nrs {
			for _, args := range argVectors(rng, byNr[n]) {
				c := call{arch: a, nr: n, args: args}
				if w, g := run(t, want.Filter, c), run(t, got.Filter, c); w != g {
					t.Fatalf("%s: arch %#x nr %d args %#x: %s (%#x), the reference %s (%#x)", goarch, a, n, args, verdict(g), g, verdict(w), w)
				}
			}
		}
	}
	if got.Flags != want.Flags {
		t.Errorf("%s: flags %#x, the reference %#x", goarch, got.Flags, want.Flags)
	}
	t.Logf("%s: %d instructions, %d linear", goarch, len(got.Filter), len(want.Filter))
}

// testProfiles are the profiles the tests compile besides the default.
var testProfiles = map[string]string{
	// Every operator, with a value whose high word counts (TestOperators).
	"operators": fmt.Sprintf(`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
		{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 1, "value": %[1]d, "op": "SCMP_CMP_EQ"}]},
		{"names": ["write"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": %[1]d, "op": "SCMP_CMP_NE"}]},
		{"names": ["open"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 2, "value": %[1]d, "op": "SCMP_CMP_GT"}]},
		{"names": ["close"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 3, "value": %[1]d, "op": "SCMP_CMP_GE"}]},
		{"names": ["stat"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 4, "value": %[1]d, "op": "SCMP_CMP_LT"}]},
		{"names": ["fstat"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 5, "value": %[1]d, "op": "SCMP_CMP_LE"}]},
		{"names": ["lstat"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": %[2]d, "valueTwo": 16, "op": "SCMP_CMP_MASKED_EQ"}]},
		{"names": ["poll"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "args": [
			{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}]},
		{"names": ["poll"], "action": "SCMP_ACT_ALLOW"}
	]}`, 0x1_0000_0010, uint64(0xffff_0000_00f0)),
	"no-mkdir": `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
		{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}`,
	// Every action, rules before and after an unconditional one, a
	// syscall in several rules, flags and 32-bit architectures.
	"mixed": `{"defaultAction": "SCMP_ACT_TRAP", "defaultErrnoRet": 5,
		"architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
		"flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"], "syscalls": [
		{"names": ["read", "write", "readv", "writev", "pread64", "pwrite64", "getpid", "getppid", "exit_group", "clone"], "action": "SCMP_ACT_ALLOW"},
		{"names": ["openat", "open"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
		{"names": ["kill"], "action": "SCMP_ACT_KILL"},
		{"names": ["tkill"], "action": "SCMP_ACT_KILL_PROCESS"},
		{"names": ["tgkill"], "action": "SCMP_ACT_KILL_THREAD"},
		{"names": ["ptrace"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
		{"names": ["mmap"], "action": "SCMP_ACT_LOG"},
		{"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ", "valueTwo": 0}]},
		{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 1, "value": 4, "op": "SCMP_CMP_LE"}, {"index": 2, "value": 18446744073709551615, "op": "SCMP_CMP_NE"}]},
		{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]},
		{"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97, "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_EQ"}]},
		{"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 21522, "op": "SCMP_CMP_EQ"}]},
		{"names": ["ioctl"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 1, "value": 4294967296, "op": "SCMP_CMP_GE"}]},
		{"names": ["ioctl"], "action": "SCMP_ACT_LOG"}
	]}`,
}

func TestEquivalentToLinear(t *testing.T) {
	for _, caps := range [][]string{dockerCaps, allCaps(), nil} {
		ls, err := Default().resolve(caps)
		if err != nil {
			t.Fatal(err)
		}
		// The profile resolved here names this host's architectures; on
		// another machine they are foreign ones beside its own.
		for goarch := range native {
			checkEquivalent(t, ls, goarch)
		}
	}
	for name, text := range testProfiles {
		p, err := Parse([]byte(text))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ls, err := p.resolve(dockerCaps)
		if err != nil {
			t.Fatal(err)
		}
		for goarch := range native {
			checkEquivalent(t, ls, goarch)
		}
	}
}

// TestLongJumps compiles a profile whose search jumps past 255
// instructions to the rules of each syscall, so that conditional jumps
// need trampolines, and one too long for the kernel.
func TestLongJumps(t *testing.T) {
	names := slices.Sorted(func(yield func(string) bool) {
		for name := range arch.X86_64.SyscallNames {
			if !yield(name) {
				return
			}
		}
	})
	ls := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86_64}}
	for i, name := range names {
		if i%3 == 0 {
			ls.Syscalls = append(ls.Syscalls, specs.LinuxSyscall{Names: []string{name}, Action: specs.ActAllow})
			continue
		}
		ls.Syscalls = append(ls.Syscalls, specs.LinuxSyscall{Names: []string{name}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: uint(i % 6), Value: uint64(i) << 20, Op: specs.OpEqualTo}}})
	}
	checkEquivalent(t, ls, "amd64")
	prog, err := compile(ls, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(prog.Filter, func(in unix.SockFilter) bool { return in.Code == unix.BPF_JMP|unix.BPF_JA && in.K > 255 }) {
		t.Error("no jump in the program is longer than a conditional one can be")
	}
	for i := range ls.Syscalls {
		s := &ls.Syscalls[i]
		for len(s.Args) < 6 {
			s.Args = append(s.Args, specs.LinuxSeccompArg{Index: uint(len(s.Args)), Value: 1 << 40, Op: specs.OpNotEqual})
		}
	}
	if _, err := compile(ls, "amd64"); err == nil || !strings.Contains(err.Error(), "more than the kernel's 4096") {
		t.Errorf("a profile of %d rules with six checks each: %v, want the kernel's limit", len(ls.Syscalls), err)
	}
}
