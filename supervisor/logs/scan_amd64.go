//go:build !purego

package logs

import "golang.org/x/sys/cpu"

// simd says the kernels of scan_amd64.s may run.
var simd = cpu.X86.HasAVX2

// escapeNewlinesAVX2 copies src into dst (len(dst) is the room) as the
// text of a JSON string, for as long as src holds bytes that go in as
// they are and newlines (written \n). It stops before any other byte to
// escape, when less than a 32-byte block of src is left, or when dst has
// less than 34 bytes of room left, and says how much of src it took and
// of dst it wrote. It may write up to 32 bytes past what it says.
//
//go:noescape
func escapeNewlinesAVX2(dst, src []byte) (nsrc, ndst int)

// prefixLinesAVX2 copies src into dst (len(dst) is the room), writing
// prefix[:plen] (plen <= 32) after each newline. It stops when less than
// a 32-byte block of src is left or dst has less than 64 bytes of room
// left, and says how much of src it took, of dst it wrote, and how many
// newlines it met. It may write up to 32 bytes past what it says.
//
//go:noescape
func prefixLinesAVX2(dst, src []byte, prefix *[32]byte, plen int) (nsrc, ndst, lines int)
