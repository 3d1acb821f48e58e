//go:build !purego

package logs

import "golang.org/x/sys/cpu"

// simd says the kernel of scan_amd64.s may run.
var simd = cpu.X86.HasAVX2

// prefixLinesAVX2 copies src into dst (len(dst) is the room), writing
// prefix[:plen] (plen <= 32) after each newline. It stops when less than
// a 32-byte block of src is left or dst has less than 64 bytes of room
// left, and says how much of src it took, of dst it wrote, and how many
// newlines it met. It may write up to 32 bytes past what it says.
//
//go:noescape
func prefixLinesAVX2(dst, src []byte, prefix *[32]byte, plen int) (nsrc, ndst, lines int)
