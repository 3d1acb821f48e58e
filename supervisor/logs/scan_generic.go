//go:build !amd64 || purego

package logs

// simd is false: scan.go's loops do all the work.
const simd = false

func escapeNewlinesAVX2(dst, src []byte) (nsrc, ndst int) { return 0, 0 }

func prefixLinesAVX2(dst, src []byte, prefix *[32]byte, plen int) (nsrc, ndst, lines int) {
	return 0, 0, 0
}
