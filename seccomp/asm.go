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
	labels []int // position of each label; -1 until bound
	fixups []fixup
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
// a conditional one reaches 255 instructions at most.
func (as *assembler) finish() ([]unix.SockFilter, error) {
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
