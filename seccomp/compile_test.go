package seccomp

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/sys/unix"
)

// call is one syscall as the filter sees it.
type call struct {
	arch uint32
	nr   uint32
	args [6]uint64
}

// run interprets a classic BPF program the way the kernel runs a seccomp
// filter: loads read struct seccomp_data in little-endian order.
func run(t *testing.T, prog []unix.SockFilter, c call) uint32 {
	t.Helper()
	data := make([]byte, 64)
	binary.LittleEndian.PutUint32(data[0:], c.nr)
	binary.LittleEndian.PutUint32(data[4:], c.arch)
	for i, a := range c.args {
		binary.LittleEndian.PutUint64(data[16+8*i:], a)
	}
	var acc uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if in.K%4 != 0 || in.K+4 > uint32(len(data)) {
				t.Fatalf("pc %d: load at %d", pc, in.K)
			}
			acc = binary.LittleEndian.Uint32(data[in.K:])
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			acc &= in.K
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(in.K)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K,
			unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K,
			unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K:
			var cond bool
			switch in.Code &^ (unix.BPF_JMP | unix.BPF_K) {
			case unix.BPF_JEQ:
				cond = acc == in.K
			case unix.BPF_JGT:
				cond = acc > in.K
			case unix.BPF_JGE:
				cond = acc >= in.K
			}
			if cond {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case unix.BPF_RET | unix.BPF_K:
			return in.K
		default:
			t.Fatalf("pc %d: opcode %#x not expected in a seccomp filter", pc, in.Code)
		}
	}
	t.Fatal("program ran off its end")
	return 0
}

// dockerCaps is Docker's default capability set.
var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

func verdict(v uint32) string {
	switch v & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_ALLOW:
		return "allow"
	case unix.SECCOMP_RET_ERRNO:
		return unix.ErrnoName(unix.Errno(v & unix.SECCOMP_RET_DATA))
	case unix.SECCOMP_RET_KILL_PROCESS:
		return "kill"
	}
	return fmt.Sprintf("%#x", v)
}

func nr(t *testing.T, info *arch.Info, name string) uint32 {
	t.Helper()
	n, ok := info.SyscallNames[name]
	if !ok {
		t.Fatalf("%s has no syscall %q", info.Name, name)
	}
	return uint32(n)
}

func TestDefaultProfileAMD64(t *testing.T) {
	x86 := func(name string, args ...uint64) call {
		c := call{arch: uint32(arch.X86_64.ID), nr: nr(t, arch.X86_64, name)}
		copy(c.args[:], args)
		return c
	}
	for _, tc := range []struct {
		caps []string
		call call
		want string
	}{
		{dockerCaps, x86("read"), "allow"},
		{dockerCaps, x86("execve"), "allow"},
		{dockerCaps, x86("mkdir"), "allow"},
		// Namespaces stay out of reach without CAP_SYS_ADMIN...
		{dockerCaps, x86("clone", uint64(unix.SIGCHLD)|unix.CLONE_VM|unix.CLONE_VFORK), "allow"},
		{dockerCaps, x86("clone", uint64(unix.SIGCHLD)|unix.CLONE_NEWUSER), "EPERM"},
		{dockerCaps, x86("clone", unix.CLONE_NEWNS|unix.CLONE_NEWCGROUP), "EPERM"},
		{dockerCaps, x86("unshare", unix.CLONE_NEWUSER|unix.CLONE_NEWNS|unix.CLONE_NEWCGROUP), "EPERM"},
		{dockerCaps, x86("unshare", unix.CLONE_NEWUSER), "EPERM"},
		{dockerCaps, x86("setns", 3, unix.CLONE_NEWNS), "EPERM"},
		{dockerCaps, x86("mount"), "EPERM"},
		// ...and with it, as in Docker, they are allowed.
		{append(dockerCaps, "CAP_SYS_ADMIN"), x86("unshare", unix.CLONE_NEWUSER), "allow"},
		{append(dockerCaps, "CAP_SYS_ADMIN"), x86("clone", unix.CLONE_NEWUSER), "allow"},
		// clone3's flags are behind a pointer: ENOSYS, so libc falls back.
		{dockerCaps, x86("clone3"), "ENOSYS"},
		{dockerCaps, x86("personality", 0), "allow"},
		{dockerCaps, x86("personality", 0xffffffff), "allow"},
		{dockerCaps, x86("personality", 0x0040000), "EPERM"}, // ADDR_NO_RANDOMIZE
		{dockerCaps, x86("personality", 1<<32), "EPERM"},     // the high word counts
		{dockerCaps, x86("keyctl"), "EPERM"},
		{dockerCaps, x86("add_key"), "EPERM"},
		{dockerCaps, x86("request_key"), "EPERM"},
		{dockerCaps, x86("io_uring_setup"), "EPERM"},
		{dockerCaps, x86("perf_event_open"), "EPERM"},
		{dockerCaps, x86("userfaultfd"), "EPERM"},
		{dockerCaps, x86("bpf"), "EPERM"},
		{dockerCaps, x86("socket", unix.AF_INET, unix.SOCK_STREAM), "allow"},
		{dockerCaps, x86("socket", unix.AF_UNIX, unix.SOCK_STREAM), "allow"},
		// A number no table has.
		{dockerCaps, call{arch: uint32(arch.X86_64.ID), nr: 4000}, "EPERM"},
		// The x32 ABI and architectures the profile does not name.
		{dockerCaps, call{arch: uint32(arch.X86_64.ID), nr: 0x40000000 | nr(t, arch.X32, "read")}, "kill"},
		{dockerCaps, call{arch: uint32(arch.AARCH64.ID), nr: 63}, "kill"},
		// i386 binaries get the same profile, with i386's numbers.
		{dockerCaps, call{arch: uint32(arch.I386.ID), nr: nr(t, arch.I386, "read")}, "allow"},
		{dockerCaps, call{arch: uint32(arch.I386.ID), nr: nr(t, arch.I386, "unshare"), args: [6]uint64{unix.CLONE_NEWUSER}}, "EPERM"},
		{dockerCaps, call{arch: uint32(arch.I386.ID), nr: nr(t, arch.I386, "keyctl")}, "EPERM"},
	} {
		ls, err := Default().resolve(tc.caps)
		if err != nil {
			t.Fatal(err)
		}
		prog, err := compile(ls, "amd64")
		if err != nil {
			t.Fatal(err)
		}
		name := arch.X86_64.SyscallNumbers[int(tc.call.nr)]
		if got := verdict(run(t, prog.Filter, tc.call)); got != tc.want {
			t.Errorf("arch %#x %s(%#x) nr %d: %s, want %s", tc.call.arch, name, tc.call.args[:2], tc.call.nr, got, tc.want)
		}
	}
}

func TestOperators(t *testing.T) {
	const big = 0x1_0000_0010
	p, err := Parse([]byte(testProfiles["operators"]))
	if err != nil {
		t.Fatal(err)
	}
	ls, err := p.resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := compile(ls, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	values := []uint64{0, 0x10, big - 1, big, big + 1, 0x2_0000_0000, 0x0_ffff_ffff}
	cmp := map[string]func(a uint64) bool{
		"read":  func(a uint64) bool { return a == big },
		"write": func(a uint64) bool { return a != big },
		"open":  func(a uint64) bool { return a > big },
		"close": func(a uint64) bool { return a >= big },
		"stat":  func(a uint64) bool { return a < big },
		"fstat": func(a uint64) bool { return a <= big },
		"lstat": func(a uint64) bool { return a&0xffff_0000_00f0 == 16 },
	}
	index := map[string]int{"read": 1, "write": 0, "open": 2, "close": 3, "stat": 4, "fstat": 5, "lstat": 0}
	for name, want := range cmp {
		for _, v := range append(values, 0x1_0000_0010|0xffff_0000_0000, 0x1_0000_ff10) {
			c := call{arch: uint32(arch.X86_64.ID), nr: nr(t, arch.X86_64, name)}
			c.args[index[name]] = v
			w := "EPERM"
			if want(v) {
				w = "allow"
			}
			if got := verdict(run(t, prog.Filter, c)); got != w {
				t.Errorf("%s with argument %d = %#x: %s, want %s", name, index[name], v, got, w)
			}
		}
	}
	// Checks within a rule are all needed; a later unconditional rule is
	// the fallback.
	for _, tc := range []struct {
		a0, a1 uint64
		want   string
	}{{1, 2, "ENOSYS"}, {1, 3, "allow"}, {0, 2, "allow"}} {
		c := call{arch: uint32(arch.X86_64.ID), nr: nr(t, arch.X86_64, "poll"), args: [6]uint64{tc.a0, tc.a1}}
		if got := verdict(run(t, prog.Filter, c)); got != tc.want {
			t.Errorf("poll(%d, %d): %s, want %s", tc.a0, tc.a1, got, tc.want)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct{ profile, want string }{
		{`{`, "decode"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscall": []}`, "unknown field"},
		{`{"syscalls": []}`, "defaultAction is missing"},
		{`{"defaultAction": "SCMP_ACT_MAYBE"}`, "unknown action"},
		{`{"defaultAction": "SCMP_ACT_NOTIFY"}`, "not supported"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}`, "index 6"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]}]}`, "SCMP_CMP_LIKE"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ERRNO"}]}`, "no syscall names"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_TSYNC"]}`, "not supported"},
		{`{"defaultAction": "SCMP_ACT_ALLOW"} {}`, "after the profile"},
	} {
		_, err := Parse([]byte(tc.profile))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %v, want an error with %q", tc.profile, err, tc.want)
		}
	}
}

func TestProfileJSON(t *testing.T) {
	custom, err := Parse([]byte(`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*Profile{Default(), Unconfined(), custom} {
		data, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var again Profile
		if err := json.Unmarshal(data, &again); err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		a, errA := p.Compile(dockerCaps)
		b, errB := again.Compile(dockerCaps)
		if errA != nil || errB != nil || (a == nil) != (b == nil) || a != nil && !slices.Equal(a.Filter, b.Filter) {
			t.Errorf("%s: compiles differently once read back (%v, %v)", data, errA, errB)
		}
	}
	var p Profile
	if err := json.Unmarshal([]byte(`"strict"`), &p); err == nil {
		t.Error(`"strict" read as a profile`)
	}
}
