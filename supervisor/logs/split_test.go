package logs

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

type piece struct {
	text    string
	partial bool
}

// split runs r through a splitter with pieces of at most max bytes.
func split(t *testing.T, r io.Reader, max int) []piece {
	t.Helper()
	sp := newSplitter(max)
	var got []piece
	for {
		n, err := r.Read(sp.space())
		for text, partial := range sp.lines(n) {
			got = append(got, pieces(t, text, partial)...)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
	}
	for line, partial := range sp.rest() {
		got = append(got, piece{string(line), partial})
	}
	return got
}

// pieces breaks what the splitter yielded into lines: a run of whole
// lines, each ending in a newline, or a piece, which has none.
func pieces(t *testing.T, text []byte, partial bool) []piece {
	t.Helper()
	if partial {
		if bytes.IndexByte(text, '\n') >= 0 {
			t.Fatalf("piece %q holds a newline", text)
		}
		return []piece{{string(text), true}}
	}
	if len(text) == 0 || text[len(text)-1] != '\n' {
		t.Fatalf("run %q does not end in a newline", text)
	}
	var ps []piece
	for line := range bytes.Lines(text) {
		ps = append(ps, piece{string(line[:len(line)-1]), false})
	}
	return ps
}

// join rebuilds a stream from its pieces: a newline follows each piece
// that is not partial.
func join(pieces []piece) string {
	var b strings.Builder
	for _, p := range pieces {
		b.WriteString(p.text)
		if !p.partial {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func TestSplitter(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	const M = MaxLine
	tests := []struct {
		name string
		in   string
		want []piece
	}{
		{"empty stream", "", nil},
		{"one line", "hello\n", []piece{{"hello", false}}},
		{"empty lines", "\n\nx\n\n", []piece{{"", false}, {"", false}, {"x", false}, {"", false}}},
		{"unterminated last line", "a\nb", []piece{{"a", false}, {"b", true}}},
		{"CRLF left as is", "a\r\nb\r\n", []piece{{"a\r", false}, {"b\r", false}}},
		{"NUL and binary bytes", "\x00\xff\xfe\n\x00", []piece{{"\x00\xff\xfe", false}, {"\x00", true}}},
		{"exactly MaxLine stays whole", a(M) + "\n", []piece{{a(M), false}}},
		{"MaxLine unterminated", a(M), []piece{{a(M), true}}},
		{"MaxLine+1 is cut", a(M+1) + "\n", []piece{{a(M), true}, {"a", false}}},
		{"three pieces", a(2*M+5) + "\nb\n", []piece{{a(M), true}, {a(M), true}, {a(5), false}, {"b", false}}},
		{"two MaxLines exactly", a(2*M) + "\n", []piece{{a(M), true}, {a(M), false}}},
		{"long unterminated", a(M + 3), []piece{{a(M), true}, {a(3), true}}},
		{"cut before a split rune", a(M-1) + "é\n", []piece{{a(M - 1), true}, {"é", false}}},
		{"cut before a split 4-byte rune", a(M-2) + "😀\n", []piece{{a(M - 2), true}, {"😀", false}}},
		{"rune that fits exactly", a(M-2) + "é" + "b\n", []piece{{a(M-2) + "é", true}, {"b", false}}},
		{"invalid byte at the cut", a(M-1) + "\xff" + "b\n", []piece{{a(M-1) + "\xff", true}, {"b", false}}},
	}
	readers := map[string]func(string) io.Reader{
		"whole":    func(s string) io.Reader { return strings.NewReader(s) },
		"one byte": func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		"half":     func(s string) io.Reader { return iotest.HalfReader(strings.NewReader(s)) },
	}
	for _, tt := range tests {
		for rname, reader := range readers {
			if rname == "one byte" && len(tt.in) > 4096 {
				continue // byte by byte through MaxLine is slow and adds nothing
			}
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				got := split(t, reader(tt.in), M)
				if !equalPieces(got, tt.want) {
					t.Errorf("got %s, want %s", describe(got), describe(tt.want))
				}
				if join(got) != tt.in {
					t.Errorf("pieces do not join back to the input")
				}
			})
		}
	}
}

func equalPieces(a, b []piece) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// describe shows pieces briefly: long runs of one byte would flood the
// failure message.
func describe(ps []piece) string {
	var b strings.Builder
	for _, p := range ps {
		s := p.text
		if len(s) > 20 {
			s = s[:8] + "..." + s[len(s)-8:] + "(" + strconv.Itoa(len(p.text)) + ")"
		}
		b.WriteString("[" + strings.ToValidUTF8(s, "?"))
		if p.partial {
			b.WriteString(" partial")
		}
		b.WriteString("]")
	}
	return b.String()
}

// TestSplitterRuns checks that the whole lines of a read come as one run,
// the unfinished one left pending.
func TestSplitterRuns(t *testing.T) {
	sp := newSplitter(MaxLine)
	n := copy(sp.space(), "a\nb\n\nc")
	var got []string
	for text, partial := range sp.lines(n) {
		if partial {
			t.Errorf("piece %q, want none", text)
		}
		got = append(got, string(text))
	}
	if len(got) != 1 || got[0] != "a\nb\n\n" {
		t.Errorf("got runs %q, want one: %q", got, "a\nb\n\n")
	}
	var rest []piece
	for text, partial := range sp.rest() {
		rest = append(rest, piece{string(text), partial})
	}
	if want := []piece{{"c", true}}; !equalPieces(rest, want) {
		t.Errorf("rest yields %s, want %s", describe(rest), describe(want))
	}
}

// TestSplitterGrows checks that reads which fill the buffer grow it, up
// to pipeSize and no further, and that reads which do not leave it be.
func TestSplitterGrows(t *testing.T) {
	sp := newSplitter(MaxLine)
	// fill reads lines into as much of space() as n says, all of it if
	// n < 0, ending at a newline so that nothing stays pending.
	fill := func(n int) {
		t.Helper()
		b := sp.space()
		if n < 0 {
			n = len(b)
		}
		for i := range n {
			b[i] = 'x'
			if i%64 == 63 || i == n-1 {
				b[i] = '\n'
			}
		}
		for range sp.lines(n) {
		}
		if pending := sp.n - sp.off; pending != 0 {
			t.Fatalf("%d bytes pending, want none", pending)
		}
	}
	for range 8 {
		fill(readSize / 2)
	}
	if len(sp.buf) != readSize {
		t.Fatalf("buffer of %d bytes after reads that left room, want %d", len(sp.buf), readSize)
	}
	for range 8 {
		fill(-1)
	}
	if len(sp.buf) != pipeSize {
		t.Errorf("buffer of %d bytes after reads that filled it, want %d", len(sp.buf), pipeSize)
	}
}

// TestSplitterGive gives the buffer away after every read that yielded
// something: the stream still comes out whole, and every run yielded
// before a give keeps its bytes while the splitter goes on.
func TestSplitterGive(t *testing.T) {
	var in strings.Builder
	for i := 0; in.Len() < 3*pipeSize; i++ {
		in.WriteString(strings.Repeat(strconv.Itoa(i%10), i%200) + "\n")
		if i%97 == 0 {
			in.WriteString(strings.Repeat("L", MaxLine+3000) + "\n") // cut into pieces
		}
	}
	in.WriteString("tail")
	type kept struct {
		b    []byte
		want string
	}
	var held []kept
	var got []piece
	sp := newSplitter(MaxLine)
	r := iotest.HalfReader(strings.NewReader(in.String()))
	for {
		n, err := r.Read(sp.space())
		yielded := false
		for text, partial := range sp.lines(n) {
			held = append(held, kept{text, string(text)})
			got = append(got, pieces(t, text, partial)...)
			yielded = true
		}
		if yielded {
			// Half as long as the buffer: give must make one its size.
			sp.give(make([]byte, len(sp.buf)/2))
		}
		if err == io.EOF {
			break
		}
	}
	for line, partial := range sp.rest() {
		got = append(got, piece{string(line), partial})
	}
	if join(got) != in.String() {
		t.Fatalf("stream differs: %d bytes, want %d", len(join(got)), in.Len())
	}
	for i, k := range held {
		if string(k.b) != k.want {
			t.Fatalf("run %d changed after its buffer was given", i)
		}
	}
}
