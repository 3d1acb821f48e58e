package logs

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// linesSlow is appendLines line by line: the reference for its SIMD path.
func linesSlow(prefix, text []byte) ([]byte, int) {
	var dst []byte
	lines := bytes.Split(text, []byte{'\n'})
	for _, l := range lines {
		dst = append(dst, prefix...)
		dst = append(dst, l...)
		dst = append(dst, '\n')
	}
	return dst, len(lines)
}

// scanTexts yields texts that put every kind of byte at every position of
// a 32-byte block and across blocks: runs of plain text of every length
// around one special byte, then random mixes weighted like log lines,
// some long enough to need room grown more than once.
func scanTexts() [][]byte {
	fill := []byte("abcdefghijklmnopqrstuvwxyz0123456789 ~\x7f/<>é")
	specials := []string{"\n", "\"", "\\", "\t", "\r", "\x00", "\x1f", " ", "é", "\xff", "\n\n"}
	var texts [][]byte
	for _, sp := range specials {
		for n := 0; n < 100; n++ {
			for _, at := range []int{0, n / 3, n / 2, n - 1, n} {
				if at < 0 || at > n {
					continue
				}
				s := make([]byte, 0, n+len(sp))
				for i := range n {
					s = append(s, fill[(i*7+n)%len(fill)])
				}
				s = append(s[:at], append([]byte(sp), s[at:]...)...)
				texts = append(texts, s)
			}
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []string{"a", "b", "word ", "0123456789", "\n", "\n", "\"", "\\", "\t", "\x01", "é", "日本"}
	for range 300 {
		var b strings.Builder
		for range rng.IntN(400) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		texts = append(texts, []byte(b.String()))
	}
	// Short lines: more newlines than the room first made for them.
	texts = append(texts, bytes.Repeat([]byte("a\n"), 5000), bytes.Repeat([]byte("\n"), 3000))
	return texts
}

// TestAppendLines checks the output's formatting against linesSlow, for
// prefixes the kernel's vector holds and longer ones it leaves to the
// loop.
func TestAppendLines(t *testing.T) {
	for _, n := range []int{0, 1, 8, 31, 32, 33, 70} {
		prefix := []byte(strings.Repeat("p", max(n-3, 0)) + " | "[:min(n, 3)])
		for _, text := range scanTexts() {
			want, wantLines := linesSlow(prefix, text)
			for _, dst := range [][]byte{nil, []byte("before\n"), make([]byte, 0, 64)} {
				got, lines := appendLines(bytes.Clone(dst), prefix, text)
				if !bytes.Equal(got[:len(dst)], dst) || !bytes.Equal(got[len(dst):], want) || lines != wantLines {
					t.Fatalf("appendLines(%q, %q) = %q, %d lines; want %q, %d", prefix, text, got[len(dst):], lines, want, wantLines)
				}
			}
		}
	}
}

// TestKernelBounds runs the kernel on its own with every room up to a
// few blocks: whatever it says it wrote must be right, and it must write
// nothing past the room it was given.
func TestKernelBounds(t *testing.T) {
	if !simd {
		t.Skip("no SIMD kernel on this machine")
	}
	src := []byte(strings.Repeat("0123456789 line\n\"quoted\" and \\ back\n", 8))
	const plen = len("container-name-here | ")
	var prefix [32]byte
	copy(prefix[:], "container-name-here | ")
	const guard = 0xa5
	for room := 0; room <= 200; room++ {
		for _, off := range []int{0, 1, 31} {
			buf := bytes.Repeat([]byte{guard}, room+64)
			s := src[off:]
			ns, nd, lines := prefixLinesAVX2(buf[:room], s, &prefix, plen)
			want := bytes.ReplaceAll(s[:ns], []byte("\n"), []byte("\ncontainer-name-here | "))
			name := fmt.Sprintf("room %d, offset %d", room, off)
			if lines != bytes.Count(s[:ns], []byte{'\n'}) {
				t.Errorf("%s: %d lines, want %d", name, lines, bytes.Count(s[:ns], []byte{'\n'}))
			}
			if nd > room || !bytes.Equal(buf[:nd], want) {
				t.Fatalf("%s: wrote %q for %q", name, buf[:nd], s[:ns])
			}
			if bytes.Count(buf[room:], []byte{guard}) != len(buf)-room {
				t.Fatalf("%s: wrote past its room: %q", name, buf[room:])
			}
			if room >= 64+32 && ns == 0 {
				t.Errorf("%s: took nothing", name)
			}
		}
	}
}

// TestFileAsReference writes texts with every kind of byte through a Log,
// in reads of several sizes, and checks the file byte for byte: each
// record must be its head, as appendHead makes it, and its text as it
// was written; the lines of the records, in the file's order, must be
// the stream, none missing, none twice, none moved.
func TestFileAsReference(t *testing.T) {
	checkLeaks(t)
	var stream []byte
	for i, text := range scanTexts() {
		stream = fmt.Appendf(stream, "%06d %s\n", i, text)
	}
	for _, chunk := range []int{1 << 20, 4096, 100, 33} {
		t.Run(fmt.Sprint(chunk), func(t *testing.T) {
			dir := t.TempDir()
			a := newAggregator(t, Config{Dirs: inDir(dir, []string{"web"}), Names: []string{"web"}, MaxSize: 64 << 20})
			web, _ := a.Container("web")
			web.Capture(Stdout, &chunkReader{bytes.NewReader(stream), chunk})
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join(dir, "web.log"))
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			for n := 0; len(raw) > 0; n++ {
				i := bytes.IndexByte(raw, '\n')
				if i < 0 {
					t.Fatalf("record %d: no head: %q", n, raw)
				}
				h, err := parseHead(raw[:i+1])
				if err != nil {
					t.Fatalf("record %d: %v: %q", n, err, raw[:i+1])
				}
				want := appendHead(nil, appendTimeStream(nil, h.time, h.stream), h.size, h.partial)
				if !bytes.Equal(raw[:i+1], want) {
					t.Fatalf("record %d: head %q, want %q", n, raw[:i+1], want)
				}
				raw = raw[i+1:]
				if len(raw) <= h.size || raw[h.size] != '\n' {
					t.Fatalf("record %d: no text of %d bytes and a newline: %q", n, h.size, raw)
				}
				got = append(got, raw[:h.size]...)
				if !h.partial {
					got = append(got, '\n')
				}
				raw = raw[h.size+1:]
			}
			if !bytes.Equal(got, stream) {
				i := 0
				for i < min(len(got), len(stream)) && got[i] == stream[i] {
					i++
				}
				t.Fatalf("the file holds %d bytes of lines, the stream %d; they differ from byte %d: %q", len(got), len(stream), i, got[i:min(len(got), i+80)])
			}
		})
	}
}
