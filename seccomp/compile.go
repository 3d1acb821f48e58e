package seccomp

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Program is a compiled filter for this machine, ready for Install. In
// JSON it is only its flags: the instructions travel as Encode's bytes.
type Program struct {
	Filter []unix.SockFilter `json:"-"`
	// Flags are the profile's SECCOMP_FILTER_FLAG_* bits.
	Flags uint `json:"flags"`

	encodeOnce sync.Once
	encoded    []byte
}

// maxInstructions is BPF_MAXINSNS, the kernel's limit on a classic program.
const maxInstructions = 4096

var filterFlags = map[specs.LinuxSeccompFlag]uint{
	specs.LinuxSeccompFlagLog:       unix.SECCOMP_FILTER_FLAG_LOG,
	specs.LinuxSeccompFlagSpecAllow: unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
}

// action is the filter's return value for a profile action; errno, when
// not nil, is the errno of SCMP_ACT_ERRNO and SCMP_ACT_TRACE (EPERM
// otherwise, as runc does).
func action(a specs.LinuxSeccompAction, errno *uint) (uint32, error) {
	data := uint32(unix.EPERM)
	if errno != nil {
		if *errno > 0xffff {
			return 0, fmt.Errorf("errnoRet %d is out of range", *errno)
		}
		data = uint32(*errno)
	}
	switch a {
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | data, nil
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | data, nil
	case specs.ActKill, specs.ActKillThread:
		// libseccomp's SCMP_ACT_KILL kills the thread.
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	case specs.ActNotify:
		return 0, fmt.Errorf("%s: user notification is not supported", a)
	}
	return 0, fmt.Errorf("unknown action %q", a)
}

// table is one architecture's part of the program.
type table struct {
	*syscallTable
	// wide is true for 64-bit ABIs, whose arguments have a high word that
	// checks must compare; a 32-bit ABI's arguments fit the low word.
	wide bool
}

var tables = map[specs.Arch]table{
	specs.ArchX86_64:  {&x86_64Syscalls, true},
	specs.ArchX86:     {&i386Syscalls, false},
	specs.ArchAARCH64: {&aarch64Syscalls, true},
	specs.ArchARM:     {&armSyscalls, false},
}

var native = map[string]specs.Arch{
	"amd64": specs.ArchX86_64,
	"386":   specs.ArchX86,
	"arm64": specs.ArchAARCH64,
	"arm":   specs.ArchARM,
}

// Compile resolves the profile for a container with capabilities caps
// (names such as "CAP_CHOWN") and compiles it for this machine.
// An Unconfined profile compiles to nil. The result is shared: callers
// must not change it.
func (p *Profile) Compile(caps []string) (*Program, error) {
	if p.unconfined {
		return nil, nil
	}
	// Every start of a container compiles the same profile for the same
	// capabilities, which takes about a millisecond: remember the last few.
	key := compiled{profile: string(p.json), caps: strings.Join(caps, ",")}
	cache.Lock()
	prog, ok := cache.programs[key]
	cache.Unlock()
	if ok {
		return prog, nil
	}
	ls, err := p.resolve(caps)
	if err != nil {
		return nil, err
	}
	if prog, err = compile(ls, runtime.GOARCH); err != nil {
		return nil, err
	}
	cache.Lock()
	defer cache.Unlock()
	if len(cache.programs) >= maxCached {
		clear(cache.programs)
	}
	cache.programs[key] = prog
	return prog, nil
}

// compiled is what a compiled program depends on: the profile's text
// (empty for Docker's default) and the capabilities.
type compiled struct{ profile, caps string }

// maxCached bounds the cache; a stack has few distinct profiles.
const maxCached = 64

var cache = struct {
	sync.Mutex
	programs map[compiled]*Program
}{programs: map[compiled]*Program{}}

func compile(ls *specs.LinuxSeccomp, goarch string) (*Program, error) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		return nil, fmt.Errorf("seccomp: big-endian machines are not supported")
	}
	nat, ok := native[goarch]
	if !ok {
		return nil, fmt.Errorf("seccomp: no syscall table for %s", goarch)
	}
	def, err := action(ls.DefaultAction, ls.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: defaultAction: %w", err)
	}
	prog := &Program{}
	for _, f := range ls.Flags {
		flag, ok := filterFlags[f]
		if !ok {
			return nil, fmt.Errorf("seccomp profile: flag %q is not supported", f)
		}
		prog.Flags |= flag
	}
	arches := []specs.Arch{nat}
	for _, a := range ls.Architectures {
		t, ok := tables[a]
		// x32 shares x86_64's audit arch: it is refused by number below.
		if ok && !slices.Contains(arches, a) && t.auditArch != tables[nat].auditArch {
			arches = append(arches, a)
		}
	}

	var as assembler
	kill := as.newLabel()
	sections := make([]label, len(arches))
	as.load(offArch)
	for i, a := range arches {
		sections[i] = as.newLabel()
		// No profile was written for any other architecture.
		otherwise := next
		if i == len(arches)-1 {
			otherwise = kill
		}
		as.jump(unix.BPF_JEQ, tables[a].auditArch, sections[i], otherwise)
	}
	for i, a := range arches {
		as.bind(sections[i])
		if err := section(&as, tables[a], ls.Syscalls, def); err != nil {
			return nil, err
		}
	}
	as.bind(kill)
	as.ret(unix.SECCOMP_RET_KILL_PROCESS)
	if prog.Filter, err = as.finish(); err != nil {
		return nil, err
	}
	if len(prog.Filter) > maxInstructions {
		return nil, fmt.Errorf("seccomp: the profile compiles to %d instructions, more than the kernel's %d", len(prog.Filter), maxInstructions)
	}
	return prog, nil
}

// rule is one profile rule for one syscall number.
type rule struct {
	args   []specs.LinuxSeccompArg
	action uint32
}

// span is a run of syscall numbers, from lo up to the next span's lo,
// that all go to one place: a shared return or one syscall's rules.
type span struct {
	lo   uint32
	leaf label
}

// x32Bit marks the x32 ABI's syscall numbers, which share x86_64's audit
// arch.
const x32Bit = 0x40000000

// section compiles the rules for one architecture's table: a binary
// search over runs of numbers with one outcome, then the rules of each
// syscall whose outcome depends on its arguments.
func section(as *assembler, t table, syscalls []specs.LinuxSyscall, def uint32) error {
	byNr := map[uint32][]rule{}
	for _, s := range syscalls {
		act, err := action(s.Action, s.ErrnoRet)
		if err != nil {
			return fmt.Errorf("seccomp profile: %v: %w", s.Names, err)
		}
		for _, name := range s.Names {
			n, ok := t.number(name)
			if !ok {
				continue // not a syscall of this architecture
			}
			byNr[n] = append(byNr[n], rule{s.Args, act})
		}
	}
	nrs := make([]uint32, 0, len(byNr))
	for n := range byNr {
		nrs = append(nrs, n)
	}
	slices.Sort(nrs)

	// The outcome of each number: a syscall whose rules all lack argument
	// checks returns its first rule's action; one with checks has its own
	// block; one with no rules returns the default.
	type block struct {
		rules []rule
		at    label
	}
	var blocks []block
	// The search's returns follow it, within reach of its jumps.
	as.rets, as.retOrder = nil, nil
	spans := []span{{0, as.retLabel(def)}}
	add := func(lo uint32, leaf label) {
		last := &spans[len(spans)-1]
		if last.leaf == leaf {
			return
		}
		if last.lo == lo {
			// Only the first span can start where the next one does.
			last.leaf = leaf
			if len(spans) > 1 && spans[len(spans)-2].leaf == leaf {
				spans = spans[:len(spans)-1]
			}
			return
		}
		spans = append(spans, span{lo, leaf})
	}
	for _, n := range nrs {
		if t.syscallTable == &x86_64Syscalls && n >= x32Bit {
			continue // refused below, whatever the rules say
		}
		rs := byNr[n]
		var leaf label
		conditional := slices.ContainsFunc(rs, func(r rule) bool { return len(r.args) > 0 })
		if conditional {
			leaf = as.newLabel()
			blocks = append(blocks, block{rs, leaf})
		} else {
			leaf = as.retLabel(rs[0].action)
		}
		add(n, leaf)
		if n < 0xffffffff {
			add(n+1, as.retLabel(def))
		}
	}
	if t.syscallTable == &x86_64Syscalls {
		add(x32Bit, as.retLabel(unix.SECCOMP_RET_KILL_PROCESS))
	}

	as.load(offNr)
	if len(spans) == 1 {
		as.ja(spans[0].leaf)
	} else {
		search(as, spans)
	}
	as.emitRets()
	for _, b := range blocks {
		as.bind(b.at)
		final := def
		haveFinal := false
		for _, r := range b.rules {
			if len(r.args) == 0 {
				// The first unconditional rule is the fallback once every
				// rule with argument checks has failed.
				if !haveFinal {
					final, haveFinal = r.action, true
				}
				continue
			}
			fail := as.newLabel()
			for _, a := range r.args {
				argCheck(as, a, t.wide, fail)
			}
			as.ret(r.action)
			as.bind(fail)
		}
		as.ret(final)
	}
	return nil
}

// search emits a balanced binary search of spans (two or more) on the
// syscall number in the accumulator: each step halves the spans left, so
// a lookup takes log2(len(spans)) jumps and the search len(spans)-1
// instructions. The lower half follows each step, the upper half after it.
func search(as *assembler, spans []span) {
	mid := len(spans) / 2
	lower, upper := spans[:mid], spans[mid:]
	jt, jf := upper[0].leaf, lower[0].leaf
	if len(upper) > 1 {
		jt = as.newLabel()
	}
	if len(lower) > 1 {
		jf = next
	}
	as.jump(unix.BPF_JGE, upper[0].lo, jt, jf)
	if len(lower) > 1 {
		search(as, lower)
	}
	if len(upper) > 1 {
		as.bind(jt)
		search(as, upper)
	}
}

// Offsets in struct seccomp_data: nr, arch, instruction_pointer, then six
// 64-bit arguments, each in the machine's (little-endian) byte order.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// argCheck emits a check of one argument that falls through when it holds
// and jumps to fail when not.
func argCheck(as *assembler, a specs.LinuxSeccompArg, wide bool, fail label) {
	lo, hi := uint32(a.Value), uint32(a.Value>>32)
	dlo, dhi := uint32(a.ValueTwo), uint32(a.ValueTwo>>32)
	ok := as.newLabel()
	if wide {
		// The high word decides unless it equals the value's.
		as.load(offArgs + 8*uint32(a.Index) + 4)
		switch a.Op {
		case specs.OpEqualTo:
			as.jump(unix.BPF_JEQ, hi, next, fail)
		case specs.OpNotEqual:
			as.jump(unix.BPF_JEQ, hi, next, ok)
		case specs.OpMaskedEqual:
			as.and(hi)
			as.jump(unix.BPF_JEQ, dhi, next, fail)
		case specs.OpGreaterThan, specs.OpGreaterEqual:
			as.jump(unix.BPF_JGT, hi, ok, next)
			as.jump(unix.BPF_JEQ, hi, next, fail)
		case specs.OpLessThan, specs.OpLessEqual:
			as.jump(unix.BPF_JGT, hi, fail, next)
			as.jump(unix.BPF_JEQ, hi, next, ok)
		}
	}
	as.load(offArgs + 8*uint32(a.Index))
	switch a.Op {
	case specs.OpEqualTo:
		as.jump(unix.BPF_JEQ, lo, next, fail)
	case specs.OpNotEqual:
		as.jump(unix.BPF_JEQ, lo, fail, next)
	case specs.OpMaskedEqual:
		as.and(lo)
		as.jump(unix.BPF_JEQ, dlo, next, fail)
	case specs.OpGreaterThan:
		as.jump(unix.BPF_JGT, lo, next, fail)
	case specs.OpGreaterEqual:
		as.jump(unix.BPF_JGE, lo, next, fail)
	case specs.OpLessThan:
		as.jump(unix.BPF_JGE, lo, fail, next)
	case specs.OpLessEqual:
		as.jump(unix.BPF_JGT, lo, fail, next)
	}
	as.bind(ok)
}

// Encode is the program's instructions as the kernel's struct
// sock_filter array, 8 bytes each, little-endian: what a process about to
// install it can read with no parsing to speak of (thousands of
// instructions as JSON cost milliseconds on every start). It is made once
// per Program, which Compile shares.
func (p *Program) Encode() []byte {
	p.encodeOnce.Do(func() {
		raw := make([]byte, 0, 8*len(p.Filter))
		for _, in := range p.Filter {
			raw = binary.LittleEndian.AppendUint16(raw, in.Code)
			raw = append(raw, in.Jt, in.Jf)
			raw = binary.LittleEndian.AppendUint32(raw, in.K)
		}
		p.encoded = raw
	})
	return p.encoded
}
