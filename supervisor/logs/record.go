package logs

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
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

// text is the line's bytes, whichever way they were stored.
func (r *record) text() []byte {
	if r.LogBase64 != nil {
		return r.LogBase64
	}
	return []byte(r.Log)
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
// text and the partial flag.
func appendRecord(dst, head, line []byte, partial bool) []byte {
	dst = append(dst, head...)
	if utf8.Valid(line) {
		dst = append(dst, `,"log":"`...)
		dst = appendJSONString(dst, line)
	} else {
		dst = append(dst, `,"log_base64":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, line)
	}
	dst = append(dst, '"')
	if partial {
		dst = append(dst, `,"partial":true`...)
	}
	return append(dst, "}\n"...)
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

// appendJSONString appends s escaped for a JSON string, copying runs of
// plain bytes at once.
func appendJSONString(dst, s []byte) []byte {
	i := 0
	for {
		j := i + plainRun(s[i:])
		dst = append(dst, s[i:j]...)
		if j == len(s) {
			return dst
		}
		switch c := s[j]; c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i = j + 1
	}
}

// plainRun is the length of the run of plain bytes that s starts with.
// It looks at eight bytes at a time (most text needs no escaping).
func plainRun(s []byte) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64(s[i:])
		q := x ^ ('"' * ones)
		b := x ^ ('\\' * ones)
		// (v-ones)&^v has a byte's high bit set where v has a zero byte,
		// (x-0x20*ones)&^x where x has a byte below 0x20. A borrow can set
		// it in a later byte too, but only after a real hit: the lowest
		// bit set marks the first byte to escape.
		if hit := ((x-0x20*ones)&^x | (q-ones)&^q | (b-ones)&^b) & highs; hit != 0 {
			return i + bits.TrailingZeros64(hit)/8
		}
	}
	for ; i < len(s); i++ {
		if !plain[s[i]] {
			return i
		}
	}
	return len(s)
}
