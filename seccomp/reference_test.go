package seccomp

// The compiler as it was before the search tree: a linear chain of
// "nr == N ? goto rules_N" for each syscall. It is kept, frozen, as the
// reference the equivalence test holds the compiler to.

import (
	"encoding/binary"
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

type linFixup struct {
	at     int
	target label
	// field is which of the instruction's offsets to set: 't', 'f' or 'a'
	// (the 32-bit offset of an unconditional jump).
	field byte
}

// linAssembler builds a classic BPF program with symbolic jump targets.
type linAssembler struct {
	insns  []unix.SockFilter
	labels []int // position of each label; -1 until bound
	fixups []linFixup
}

func (as *linAssembler) newLabel() label {
	as.labels = append(as.labels, -1)
	return label(len(as.labels) - 1)
}

func (as *linAssembler) bind(l label) { as.labels[l] = len(as.insns) }

func (as *linAssembler) emit(code uint16, k uint32) {
	as.insns = append(as.insns, unix.SockFilter{Code: code, K: k})
}

func (as *linAssembler) load(off uint32) { as.emit(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, off) }
func (as *linAssembler) and(k uint32)    { as.emit(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, k) }
func (as *linAssembler) ret(k uint32)    { as.emit(unix.BPF_RET|unix.BPF_K, k) }

// jump emits a conditional jump comparing the accumulator with k.
func (as *linAssembler) jump(cond uint16, k uint32, jt, jf label) {
	as.fixups = append(as.fixups, linFixup{len(as.insns), jt, 't'}, linFixup{len(as.insns), jf, 'f'})
	as.emit(unix.BPF_JMP|cond|unix.BPF_K, k)
}

// ja emits an unconditional jump, which reaches any distance.
func (as *linAssembler) ja(target label) {
	as.fixups = append(as.fixups, linFixup{len(as.insns), target, 'a'})
	as.emit(unix.BPF_JMP|unix.BPF_JA, 0)
}

// finish resolves the jumps. Only forward jumps exist in classic BPF, and
// a conditional one reaches 255 instructions at most.
func (as *linAssembler) finish() ([]unix.SockFilter, error) {
	for _, f := range as.fixups {
		var off int
		switch f.target {
		case next:
			off = 0
		case skipOne:
			off = 1
		default:
			pos := as.labels[f.target]
			if pos < 0 {
				return nil, fmt.Errorf("seccomp: internal error: jump at %d to an unbound label", f.at)
			}
			off = pos - f.at - 1
		}
		if off < 0 || f.field != 'a' && off > 255 {
			return nil, fmt.Errorf("seccomp: internal error: jump at %d by %d instructions", f.at, off)
		}
		switch f.field {
		case 't':
			as.insns[f.at].Jt = uint8(off)
		case 'f':
			as.insns[f.at].Jf = uint8(off)
		case 'a':
			as.insns[f.at].K = uint32(off)
		}
	}
	return as.insns, nil
}
func compileLinear(ls *specs.LinuxSeccomp, goarch string) (*Program, error) {
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

	var as linAssembler
	kill := as.newLabel()
	sections := make([]label, len(arches))
	as.load(offArch)
	for i, a := range arches {
		sections[i] = as.newLabel()
		as.jump(unix.BPF_JEQ, tables[a].auditArch, next, skipOne)
		as.ja(sections[i])
	}
	// No profile was written for any other architecture.
	as.ja(kill)
	for i, a := range arches {
		as.bind(sections[i])
		if err := linSection(&as, tables[a], ls.Syscalls, def, kill); err != nil {
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

// section compiles the rules for one architecture's table.
func linSection(as *linAssembler, t table, syscalls []specs.LinuxSyscall, def uint32, kill label) error {
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

	as.load(offNr)
	if t.syscallTable == &x86_64Syscalls {
		// The x32 ABI: same audit arch, numbers with the x32 bit set.
		as.jump(unix.BPF_JGE, 0x40000000, next, skipOne)
		as.ja(kill)
	}
	bodies := make([]label, len(nrs))
	for i, n := range nrs {
		bodies[i] = as.newLabel()
		as.jump(unix.BPF_JEQ, n, next, skipOne)
		as.ja(bodies[i])
	}
	as.ret(def)
	for i, n := range nrs {
		as.bind(bodies[i])
		final := def
		haveFinal := false
		for _, r := range byNr[n] {
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
				linArgCheck(as, a, t.wide, fail)
			}
			as.ret(r.action)
			as.bind(fail)
		}
		as.ret(final)
	}
	return nil
}

// argCheck emits a check of one argument that falls through when it holds
// and jumps to fail when not.
func linArgCheck(as *linAssembler, a specs.LinuxSeccompArg, wide bool, fail label) {
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
