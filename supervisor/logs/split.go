package logs

import (
	"bytes"
	"iter"
	"unicode/utf8"
)

// MaxLine is the longest piece of a line kept whole: a longer line is cut
// into pieces of at most MaxLine bytes, each but the last marked partial.
const MaxLine = 256 << 10

// readSize is how much one read may add to what is pending. A pipe holds
// 64 KiB by default, so a read rarely returns more.
const readSize = 64 << 10

// splitter cuts a byte stream into lines without copying them: reads land
// in buf right after the pending, incomplete line, and lines are yielded as
// slices of buf that stay valid until the next read.
type splitter struct {
	buf  []byte
	max  int // longest piece yielded
	n    int // buf[:n] is read but not yet yielded
	scan int // buf[:scan] is known to hold no newline
}

func newSplitter(max int) *splitter {
	return &splitter{buf: make([]byte, min(readSize, max+readSize)), max: max}
}

// space is where the next read goes. The buffer starts at readSize and
// grows only while a long line is pending, up to max+readSize: a pending
// line is at most max bytes (anything longer has been cut), so that leaves
// room for readSize more. A stack of quiet containers so holds 64 KiB per
// stream, not 320.
func (s *splitter) space() []byte {
	if free := len(s.buf) - s.n; free < readSize/4 && len(s.buf) < s.max+readSize {
		buf := make([]byte, min(2*len(s.buf), s.max+readSize))
		copy(buf, s.buf[:s.n])
		s.buf = buf
	}
	return s.buf[s.n:]
}

// lines accounts for k bytes read into space() and yields every line they
// complete (without its newline, partial false) and every max-sized piece
// of a line known to be longer than max (partial true). What follows the
// last newline stays pending.
func (s *splitter) lines(k int) iter.Seq2[[]byte, bool] {
	return func(yield func([]byte, bool) bool) {
		end := s.n + k
		start := 0
		defer func() { s.keep(start, end) }()
		for {
			i := bytes.IndexByte(s.buf[s.scan:end], '\n')
			if i < 0 {
				s.scan = end
				break
			}
			nl := s.scan + i
			s.scan = nl + 1
			for nl-start > s.max {
				cut := pieceEnd(s.buf[start : start+s.max])
				if !yield(s.buf[start:start+cut], true) {
					start += cut
					return
				}
				start += cut
			}
			line := s.buf[start:nl]
			start = nl + 1
			if !yield(line, false) {
				return
			}
		}
		// Cut only once more than max bytes are known to be without a
		// newline: a line of exactly max bytes may still end in one.
		for end-start > s.max {
			cut := pieceEnd(s.buf[start : start+s.max])
			line := s.buf[start : start+cut]
			start += cut
			if !yield(line, true) {
				return
			}
		}
	}
}

// keep moves the pending bytes buf[start:end] to the front of buf.
func (s *splitter) keep(start, end int) {
	s.scan -= start
	if s.scan < 0 {
		s.scan = 0
	}
	s.n = copy(s.buf, s.buf[start:end])
}

// rest yields what is pending when the stream has ended: a last line that
// had no newline, marked partial because no newline followed it.
func (s *splitter) rest() iter.Seq2[[]byte, bool] {
	return func(yield func([]byte, bool) bool) {
		if s.n > 0 {
			line := s.buf[:s.n]
			s.n, s.scan = 0, 0
			yield(line, true)
		}
	}
}

// pieceEnd is where to cut p, a piece of a long line: at its end, or just
// before a UTF-8 sequence that p would split, so that every piece of valid
// text stays valid text (and is stored as such, not as bytes).
func pieceEnd(p []byte) int {
	i := len(p) - 1
	for i > 0 && i > len(p)-utf8.UTFMax && !utf8.RuneStart(p[i]) {
		i--
	}
	if i > 0 && !utf8.FullRune(p[i:]) {
		return i
	}
	return len(p)
}
