package logs

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"iter"
	"math/bits"
	"slices"
	"time"
	"unicode/utf8"
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

// record is one line of a log file, as read back.
type record struct {
	Time   time.Time `json:"time"`
	Stream Stream    `json:"stream"`
	Log    string    `json:"log"`
	// LogBase64 holds a line that is not valid UTF-8, which a JSON string
	// cannot carry without replacing bytes.
	LogBase64 []byte `json:"log_base64"`
	Partial   bool   `json:"partial"`
}

// text is the record's bytes, whichever way they were stored.
func (r *record) text() []byte {
	if r.LogBase64 != nil {
		return r.LogBase64
	}
	return []byte(r.Log)
}

// lines yields the lines of the record, each with whether it is partial
// (no newline followed it): a record holds one or more lines joined by
// newlines, all whole but the last, which is partial if the record is.
func (r *record) lines() iter.Seq2[[]byte, bool] {
	return func(yield func([]byte, bool) bool) {
		text := r.text()
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
	text := r.text()
	for range n {
		text = text[bytes.IndexByte(text, '\n')+1:]
	}
	if r.LogBase64 != nil {
		r.LogBase64 = text
	} else {
		r.Log = string(text)
	}
}

func parseRecord(line []byte) (record, error) {
	var r record
	if err := json.Unmarshal(line, &r); err != nil {
		return r, err
	}
	switch r.Stream {
	case Stdout, Stderr, Event:
	default:
		return r, fmt.Errorf("unknown stream %q", r.Stream)
	}
	if r.Time.IsZero() {
		return r, fmt.Errorf("no time")
	}
	return r, nil
}

// appendRecordHead appends the part of a record that lines of one stream
// read at one moment share: `{"time":"...","stream":"stdout"`.
func appendRecordHead(dst []byte, t time.Time, s Stream) []byte {
	dst = append(dst, `{"time":"`...)
	dst = t.UTC().AppendFormat(dst, timeFormat)
	dst = append(dst, `","stream":"`...)
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendRecord appends one JSON line: head (from appendRecordHead), the
// text and the partial flag. Text that is not valid UTF-8 is stored as
// log_base64; the caller gives such text one line at a time (see
// Log.add), since a reader splits either field at its newlines.
func appendRecord(dst, head, text []byte, partial bool) []byte {
	if utf8.Valid(text) {
		return appendTextRecord(dst, head, text, partial)
	}
	dst = append(dst, head...)
	dst = append(dst, `,"log_base64":"`...)
	dst = base64.StdEncoding.AppendEncode(dst, text)
	return appendRecordTail(dst, partial)
}

// appendTextRecord is appendRecord for text the caller has checked is
// valid UTF-8 (Log.put checks every run once): it skips the check.
func appendTextRecord(dst, head, text []byte, partial bool) []byte {
	dst = append(dst, head...)
	dst = append(dst, `,"log":"`...)
	dst = appendJSONString(dst, text)
	return appendRecordTail(dst, partial)
}

// appendRecordTail closes the record's text field and the record.
func appendRecordTail(dst []byte, partial bool) []byte {
	dst = append(dst, '"')
	if partial {
		dst = append(dst, `,"partial":true`...)
	}
	return append(dst, "}\n"...)
}

// recordLen is the length of the record appendRecord makes of valid UTF-8
// text, partial false.
func recordLen(head, text []byte) int {
	return len(head) + len(`,"log":"`) + escapedLen(text) + len(`"}`+"\n")
}

// escapedLen is the length of text (valid UTF-8) as appendJSONString
// escapes it.
func escapedLen(text []byte) int {
	n := len(text)
	for i := 0; ; i++ {
		i += plainRun(text[i:])
		if i >= len(text) {
			return n
		}
		switch text[i] {
		case '"', '\\', '\n', '\r', '\t':
			n++
		default:
			n += len(`\u0000`) - 1
		}
	}
}

// plain marks the bytes that go into a JSON string as they are; the caller
// has checked that the text is valid UTF-8.
var plain = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= 0x20 && c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendJSONString appends s escaped for a JSON string. Where the SIMD
// kernel runs (scan_amd64.s), it takes plain bytes and newlines, the
// bulk of a run of lines, 32 at a time, and stops for the rest; the loop
// below does what it leaves: other bytes to escape, and the tail.
func appendJSONString(dst, s []byte) []byte {
	for simd && len(s) >= 32 {
		// Room for the text, a newline every 64 bytes and what the
		// kernel writes ahead; with more newlines than that, it stops
		// short and the next round grows dst again.
		if need := len(s) + len(s)/64 + 64; cap(dst)-len(dst) < need {
			dst = slices.Grow(dst, need)
		}
		ns, nd := escapeNewlinesAVX2(dst[len(dst):cap(dst)], s)
		dst, s = dst[:len(dst)+nd], s[ns:]
		if len(s) > 0 && !plain[s[0]] {
			dst = appendEscape(dst, s[0])
			s = s[1:]
		}
	}
	i := 0
	for {
		j := i + plainRun(s[i:])
		dst = append(dst, s[i:j]...)
		if j == len(s) {
			return dst
		}
		dst = appendEscape(dst, s[j])
		i = j + 1
	}
}

// appendEscape appends c, a byte that plain says a JSON string cannot
// hold as it is, escaped.
func appendEscape(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	default:
		return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
	}
}

// plainRun is the length of the run of plain bytes that s starts with.
// It looks at sixteen bytes at a time (most text needs no escaping).
func plainRun(s []byte) int {
	i := 0
	for ; i+16 <= len(s); i += 16 {
		lo, hi := binary.LittleEndian.Uint64(s[i:]), binary.LittleEndian.Uint64(s[i+8:])
		if hit := escapes(lo); hit != 0 {
			return i + bits.TrailingZeros64(hit)/8
		} else if hit := escapes(hi); hit != 0 {
			return i + 8 + bits.TrailingZeros64(hit)/8
		}
	}
	for ; i < len(s); i++ {
		if !plain[s[i]] {
			return i
		}
	}
	return len(s)
}

// escapes has the high bit set of each byte of x that JSON escapes (below
// 0x20, '"', '\\') from the lowest such byte on; 0 if there is none.
func escapes(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	// (v-ones)&^v has a byte's high bit set where v has a zero byte,
	// (x-0x20*ones)&^x where x has a byte below 0x20. A borrow can set it
	// in a later byte too, but only after a real hit: the lowest bit set
	// marks the first byte to escape. x, x^'"' and x^'\\' have the same
	// high bits, so one &^x serves all three.
	q := x ^ ('"' * ones)
	b := x ^ ('\\' * ones)
	return ((x - 0x20*ones) | (q - ones) | (b - ones)) &^ x & highs
}
