package logs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"time"
)

// Stream says where a line came from.
type Stream string

const (
	Stdout Stream = "stdout"
	Stderr Stream = "stderr"
	// Event is a line the supervisor wrote about the container.
	Event Stream = "event"
)

// timeFormat is RFC 3339 with a fixed nine-digit fraction, so that every
// record's time has the same width; any RFC 3339 parser reads it.
const timeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// A record is a head, a JSON object on a line of its own, and then as
// many bytes as its "bytes" says, as the container wrote them, and a
// newline:
//
//	{"time":"2006-01-02T15:04:05.000000000Z","stream":"stdout","bytes":7}
//	one
//	two
//
// The bytes are lines joined by newlines, all whole but the last, which
// is partial (no newline followed it) when the head says "partial":true.
// Only the head is parsed: the text is never escaped or checked, which
// a JSON string would need (and base64 for text that is not UTF-8), so
// storing a line costs its copy to the file and no pass of its own. A
// reader finds each head from the length of the record before it and
// never in the text, so a container cannot write a record of its own.
const (
	headTime   = `{"time":"`
	headStream = `","stream":"`
	headBytes  = `","bytes":`
	headPart   = `,"partial":true`
	headEnd    = "}\n"
)

// maxBody bounds the text of a record a reader accepts, so that a head
// damaged to a huge length is refused rather than allocated: the writer
// makes none longer than its read buffer (see splitter), a few hundred
// KiB.
const maxBody = 4 << 20

// maxHead bounds a head: a longer line is none.
const maxHead = 256

// recordHead is the head of a record.
type recordHead struct {
	time    time.Time
	stream  Stream
	size    int // of the text
	partial bool
}

// record is one record of a log file, as read back.
type record struct {
	Time    time.Time
	Stream  Stream
	Text    []byte // lines joined by newlines
	Partial bool   // the last line is a piece: no newline followed it
}

// lines yields the lines of the record, each with whether it is partial.
func (r *record) lines() iter.Seq2[[]byte, bool] {
	return func(yield func([]byte, bool) bool) {
		text := r.Text
		for {
			i := bytes.IndexByte(text, '\n')
			if i < 0 {
				yield(text, r.Partial)
				return
			}
			if !yield(text[:i], false) {
				return
			}
			text = text[i+1:]
		}
	}
}

// dropLines removes the first n lines of the record, fewer than it holds.
func (r *record) dropLines(n int) {
	for range n {
		r.Text = r.Text[bytes.IndexByte(r.Text, '\n')+1:]
	}
}

// appendTimeStream appends the part of a head that the records of one
// stream read at one moment share: `{"time":"...","stream":"stdout`.
func appendTimeStream(dst []byte, t time.Time, s Stream) []byte {
	dst = append(dst, headTime...)
	dst = t.UTC().AppendFormat(dst, timeFormat)
	dst = append(dst, headStream...)
	return append(dst, s...)
}

// appendHead appends the head of a record of size bytes of text to ts,
// from appendTimeStream.
func appendHead(dst, ts []byte, size int, partial bool) []byte {
	dst = append(dst, ts...)
	dst = append(dst, headBytes...)
	dst = strconv.AppendInt(dst, int64(size), 10)
	if partial {
		dst = append(dst, headPart...)
	}
	return append(dst, headEnd...)
}

// headLen is the length of appendHead's head; ts as there.
func headLen(ts []byte, size int, partial bool) int {
	n := len(ts) + len(headBytes) + digits(size) + len(headEnd)
	if partial {
		n += len(headPart)
	}
	return n
}

// recordLen is the length in the file of the record of size bytes of
// text; ts as for appendHead.
func recordLen(ts []byte, size int, partial bool) int {
	return headLen(ts, size, partial) + size + 1
}

func digits(n int) int {
	d := 1
	for ; n >= 10; n /= 10 {
		d++
	}
	return d
}

// appendRecord appends the whole record of text (for tests and events;
// the capture writes a record's text from where it was read).
func appendRecord(dst, ts, text []byte, partial bool) []byte {
	dst = appendHead(dst, ts, len(text), partial)
	return append(append(dst, text...), '\n')
}

var errHead = errors.New("not a record head")

// parseHead parses a head as appendHead writes it, newline included. It
// is strict: a head is written by the supervisor alone, in this one form.
func parseHead(line []byte) (recordHead, error) {
	var h recordHead
	rest, ok := bytes.CutPrefix(line, []byte(headTime))
	if !ok {
		return h, errHead
	}
	i := bytes.IndexByte(rest, '"')
	if i < 0 {
		return h, errHead
	}
	t, err := time.Parse(time.RFC3339Nano, string(rest[:i]))
	if err != nil {
		return h, fmt.Errorf("time: %w", err)
	}
	h.time = t
	if rest, ok = bytes.CutPrefix(rest[i:], []byte(headStream)); !ok {
		return h, errHead
	}
	i = bytes.IndexByte(rest, '"')
	if i < 0 {
		return h, errHead
	}
	switch s := Stream(rest[:i]); s {
	case Stdout, Stderr, Event:
		h.stream = s
	default:
		return h, fmt.Errorf("unknown stream %q", s)
	}
	if rest, ok = bytes.CutPrefix(rest[i:], []byte(headBytes)); !ok {
		return h, errHead
	}
	i = 0
	for i < len(rest) && '0' <= rest[i] && rest[i] <= '9' && i < 8 {
		h.size = 10*h.size + int(rest[i]-'0')
		i++
	}
	switch {
	case i == 0 || (rest[0] == '0' && i > 1):
		return h, errHead
	case h.size > maxBody:
		return h, fmt.Errorf("a text of %d bytes, more than a record holds", h.size)
	}
	rest, h.partial = bytes.CutPrefix(rest[i:], []byte(headPart))
	if !bytes.Equal(rest, []byte(headEnd)) {
		return h, errHead
	}
	return h, nil
}

// walkRecords reads the records of r from its start, without keeping
// their text. It returns how many lines the whole records hold and where
// the last of them ends: a record cut short (a write a crash cut), or
// anything that is not a record, ends the walk, since no record can be
// found after it (see fileReader.next). Errors are those of reading.
func walkRecords(r io.Reader) (lines int, end int64, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return lines, end, ignoreEOF(err)
		}
		h, err := parseHead(line)
		if err != nil {
			return lines, end, nil
		}
		// The text and its newline, counted where they are buffered.
		n, left := 0, h.size+1
		var last byte
		for left > 0 {
			b, err := br.Peek(min(left, br.Size()))
			if len(b) == 0 {
				return lines, end, ignoreEOF(err)
			}
			n += bytes.Count(b, []byte{'\n'})
			last = b[len(b)-1]
			left -= len(b)
			_, _ = br.Discard(len(b)) // buffered: cannot fail
		}
		if last != '\n' {
			return lines, end, nil
		}
		lines += n // a newline for each line but the last, and the record's own
		end += int64(len(line) + h.size + 1)
	}
}

// ignoreEOF is err, but nil for the end of the input (and a cut short
// buffer, which is no record).
func ignoreEOF(err error) error {
	if err == io.EOF || errors.Is(err, bufio.ErrBufferFull) {
		return nil
	}
	return err
}
