package logs

import (
	"bytes"
	"iter"
	"unicode/utf8"
)

// MaxLine is the longest piece of a line kept whole: a longer line is cut
// into pieces of at most MaxLine bytes, each but the last marked partial.
const MaxLine = 256 << 10

// readSize is how much one read may add to what is pending, at first. A
// pipe holds 64 KiB by default, so a read of a quiet stream rarely
// returns more.
const readSize = 64 << 10

// splitter cuts a byte stream into lines without copying them: reads land
// in buf right after the pending, incomplete line, and lines are yielded as
// slices of buf that stay valid until the next read, or for good once the
// buffer is given away (give).
type splitter struct {
	buf  []byte
	max  int // longest piece yielded
	off  int // buf[:off] has been yielded; the pending bytes start here
	n    int // buf[off:n] is read but not yet yielded
	scan int // buf[off:scan] is known to hold no newline
	// full says the last read took all the room space() gave, so that
	// the stream has more waiting.
	full bool
}

func newSplitter(max int) *splitter {
	return &splitter{buf: make([]byte, min(readSize, max+readSize)), max: max}
}

// space is where the next read goes. The buffer starts at readSize, so
// that a stack of quiet containers holds 64 KiB per stream, and grows:
//
//   - while reads fill it, up to pipeSize, so that one read takes all a
//     busy writer has put in its pipe: a quarter of the reads, wake-ups
//     and writes to the file for the same lines;
//   - while a long line is pending, up to max+readSize: a pending line is
//     at most max bytes (anything longer has been cut), so that leaves
//     room for readSize more.
func (s *splitter) space() []byte {
	s.compact()
	free := len(s.buf) - s.n
	switch {
	case free < readSize/4 && len(s.buf) < s.max+readSize:
		s.grow(min(2*len(s.buf), s.max+readSize))
	case s.full && len(s.buf) < pipeSize:
		s.grow(min(2*len(s.buf), pipeSize))
	}
	return s.buf[s.n:]
}

func (s *splitter) grow(size int) {
	buf := make([]byte, size)
	copy(buf, s.buf[:s.n])
	s.buf = buf
}

// lines accounts for k bytes read into space() and yields what they
// complete: runs of whole lines, each line with its newline (partial
// false), and every max-sized piece of a line known to be longer than max,
// without a newline (partial true). A run is as many lines as are
// contiguous in buf, so that a batch of short lines costs one step, not
// one per line. What follows the last newline stays pending.
func (s *splitter) lines(k int) iter.Seq2[[]byte, bool] {
	// space() gave buf[n:], and nothing has moved since: the read
	// filled it if it reached the end of buf.
	s.full = s.n+k == len(s.buf)
	return func(yield func([]byte, bool) bool) {
		end := s.n + k
		start := 0
		defer func() { s.keep(start, end) }()
		if end <= s.max {
			// No line here can be longer than max: one run, up to the
			// last newline.
			i := bytes.LastIndexByte(s.buf[s.scan:end], '\n')
			if i < 0 {
				s.scan = end
				return
			}
			start = s.scan + i + 1
			s.scan = start
			yield(s.buf[:start], false)
			return
		}
		line := 0 // where the line being scanned starts; start <= line
		for {
			i := bytes.IndexByte(s.buf[s.scan:end], '\n')
			if i < 0 {
				s.scan = end
				break
			}
			nl := s.scan + i
			s.scan = nl + 1
			if nl-line > s.max {
				if line > start {
					if !yield(s.buf[start:line], false) {
						start = line
						return
					}
				}
				start = line
				for nl-start > s.max {
					cut := pieceEnd(s.buf[start : start+s.max])
					start += cut
					if !yield(s.buf[start-cut:start], true) {
						return
					}
				}
			}
			line = nl + 1
		}
		if line > start {
			run := s.buf[start:line]
			start = line
			if !yield(run, false) {
				return
			}
		}
		// Cut only once more than max bytes are known to be without a
		// newline: a line of exactly max bytes may still end in one.
		for end-start > s.max {
			cut := pieceEnd(s.buf[start : start+s.max])
			start += cut
			if !yield(s.buf[start-cut:start], true) {
				return
			}
		}
	}
}

// keep marks buf[start:end] as what is pending. It stays where it is
// until the next read (space) moves it to the front of buf, so that what
// was yielded before it stays whole until then, for give.
func (s *splitter) keep(start, end int) {
	s.off, s.n = start, end
	s.scan = max(s.scan, start)
}

// compact moves the pending bytes to the front of buf.
func (s *splitter) compact() {
	if s.off == 0 {
		return
	}
	s.n = copy(s.buf, s.buf[s.off:s.n])
	s.scan -= s.off
	s.off = 0
}

// give hands out the buffer, with what the last read yielded in it, for
// good, and goes on in buf (a new one if buf is shorter than the buffer
// was): the pending bytes are copied there. The caller may keep every
// slice yielded so far; the splitter never writes to them again.
func (s *splitter) give(buf []byte) {
	old := s.buf
	if len(buf) < len(old) {
		buf = make([]byte, len(old))
	}
	s.n = copy(buf, old[s.off:s.n])
	s.scan -= s.off
	s.off = 0
	s.buf = buf
}

// rest yields what is pending when the stream has ended: a last line that
// had no newline, marked partial because no newline followed it.
func (s *splitter) rest() iter.Seq2[[]byte, bool] {
	return func(yield func([]byte, bool) bool) {
		s.compact()
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
