package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// label names a position in a program being assembled.
type label int

// Jump targets relative to the jump itself.
const (
	next    label = -1 // the following instruction
	skipOne label = -2 // the one after it
)

type fixup struct {
	at     int
	target label
	// field is which of the instruction's offsets to set: 't', 'f' or 'a'
	// (the 32-bit offset of an unconditional jump).
	field byte
}

// assembler builds a classic BPF program with symbolic jump targets.
type assembler struct {
	insns  []unix.SockFilter
	labels []int // instruction each label is bound to; -1 until bound
	fixups []fixup
	// rets are labels of return instructions that the jumps since the
	// last emitRets share; emitRets places them.
	rets     map[uint32]label
	retOrder []uint32
}

func (as *assembler) newLabel() label {
	as.labels = append(as.labels, -1)
	return label(len(as.labels) - 1)
}

func (as *assembler) bind(l label) { as.labels[l] = len(as.insns) }

func (as *assembler) emit(code uint16, k uint32) {
	as.insns = append(as.insns, unix.SockFilter{Code: code, K: k})
}

func (as *assembler) load(off uint32) { as.emit(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, off) }
func (as *assembler) and(k uint32)    { as.emit(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, k) }
func (as *assembler) ret(k uint32)    { as.emit(unix.BPF_RET|unix.BPF_K, k) }

// retLabel is the label of the "return k" that emitRets will place.
func (as *assembler) retLabel(k uint32) label {
	if as.rets == nil {
		as.rets = map[uint32]label{}
	}
	l, ok := as.rets[k]
	if !ok {
		l = as.newLabel()
		as.rets[k] = l
		as.retOrder = append(as.retOrder, k)
	}
	return l
}

// emitRets places the shared returns here.
func (as *assembler) emitRets() {
	for _, k := range as.retOrder {
		as.bind(as.rets[k])
		as.ret(k)
	}
}

// jump emits a conditional jump comparing the accumulator with k.
func (as *assembler) jump(cond uint16, k uint32, jt, jf label) {
	as.fixups = append(as.fixups, fixup{len(as.insns), jt, 't'}, fixup{len(as.insns), jf, 'f'})
	as.emit(unix.BPF_JMP|cond|unix.BPF_K, k)
}

// ja emits an unconditional jump, which reaches any distance.
func (as *assembler) ja(target label) {
	as.fixups = append(as.fixups, fixup{len(as.insns), target, 'a'})
	as.emit(unix.BPF_JMP|unix.BPF_JA, 0)
}

// finish resolves the jumps. Only forward jumps exist in classic BPF, and
// a conditional one reaches 255 instructions at most: a branch that goes
// further goes through an unconditional jump placed right after its
// conditional one (a trampoline). A trampoline lengthens the jumps over
// it, so they are added until none is needed any more; they are never
// taken away, so this ends.
func (as *assembler) finish() ([]unix.SockFilter, error) {
	targets := make([]int, len(as.fixups))
	for i, f := range as.fixups {
		switch f.target {
		case next:
			targets[i] = f.at + 1
		case skipOne:
			targets[i] = f.at + 2
		default:
			targets[i] = as.labels[f.target]
			if targets[i] < 0 {
				return nil, fmt.Errorf("seccomp: internal error: jump at %d to an unbound label", f.at)
			}
		}
		if targets[i] <= f.at || targets[i] > len(as.insns) {
			return nil, fmt.Errorf("seccomp: internal error: jump at %d to instruction %d", f.at, targets[i])
		}
	}
	// far[i] says which fixups go through a trampoline; pos maps an
	// instruction to its place in the final program.
	far := make([]bool, len(as.fixups))
	extra := make([]int, len(as.insns)) // trampolines after each instruction
	pos := make([]int, len(as.insns)+1)
	for {
		p := 0
		for i := range as.insns {
			pos[i] = p
			p += 1 + extra[i]
		}
		pos[len(as.insns)] = p
		changed := false
		for i, f := range as.fixups {
			if f.field == 'a' || far[i] {
				continue
			}
			if pos[targets[i]]-pos[f.at]-1 > 255 {
				far[i] = true
				extra[f.at]++
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	out := make([]unix.SockFilter, 0, pos[len(as.insns)])
	// tramp[i] is where fixup i's trampoline is.
	tramp := make([]int, len(as.fixups))
	used := make([]int, len(as.insns))
	for i, f := range as.fixups {
		if far[i] {
			tramp[i] = pos[f.at] + 1 + used[f.at]
			used[f.at]++
		}
	}
	for i, in := range as.insns {
		out = append(out, in)
		for range extra[i] {
			out = append(out, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JA})
		}
	}
	for i, f := range as.fixups {
		at, to := pos[f.at], pos[targets[i]]
		if far[i] {
			out[tramp[i]].K = uint32(to - tramp[i] - 1)
			to = tramp[i]
		}
		off := to - at - 1
		switch f.field {
		case 't':
			out[at].Jt = uint8(off)
		case 'f':
			out[at].Jf = uint8(off)
		case 'a':
			out[at].K = uint32(off)
		}
	}
	return out, nil
}
