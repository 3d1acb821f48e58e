package logs

import (
	"bytes"
	"slices"
	"strings"
	"time"
)

// Separators between a container's name and what follows it on a line of
// the aggregated output. A container controls only what comes after the
// separator, so it cannot print a line that looks like an event.
const (
	lineSep  = " | "
	eventSep = " * "
)

// palette holds the ANSI colors given to containers in turn, the same
// sequence docker compose uses: cyan, yellow, green, magenta, blue, then
// their bright variants.
var palette = [...]string{"36", "33", "32", "35", "34", "96", "93", "92", "95", "94"}

const (
	reset = "\x1b[0m"
	bold  = "\x1b[1m"
)

// formatter renders lines as `NAME | LINE` and events as `NAME * EVENT`,
// names padded to the longest shown.
type formatter struct {
	width int
	color bool
	// colors maps a name to its palette index; it is the name's position
	// among every container of the stack, so a container keeps its color
	// whichever subset is shown.
	colors map[string]int
}

// newFormatter formats the containers named shown; all names every
// container of the stack (colors are handed out over it).
func newFormatter(shown, all []string, color bool) formatter {
	f := formatter{color: color, colors: map[string]int{}}
	for _, name := range shown {
		f.width = max(f.width, len(name))
	}
	sorted := slices.Sorted(slices.Values(all))
	for i, name := range slices.Compact(sorted) {
		f.colors[name] = i % len(palette)
	}
	return f
}

func (f formatter) prefix(name, sep string) []byte {
	var b strings.Builder
	if f.color {
		b.WriteString("\x1b[" + palette[f.colors[name]] + "m")
	}
	b.WriteString(name)
	b.WriteString(strings.Repeat(" ", f.width-len(name)))
	b.WriteString(strings.TrimRight(sep, " "))
	if f.color {
		b.WriteString(reset)
	}
	b.WriteString(" ")
	return []byte(b.String())
}

// linePrefix is what precedes a container's line: `web  | `.
func (f formatter) linePrefix(name string) []byte { return f.prefix(name, lineSep) }

// eventPrefix is what precedes a supervisor event: `web  * `.
func (f formatter) eventPrefix(name string) []byte { return f.prefix(name, eventSep) }

// appendLine appends one line of output: the prefix for its stream, the
// time when asked for, the text and a newline.
func (f formatter) appendLine(dst, linePrefix, eventPrefix []byte, s Stream, t time.Time, text []byte, stamp bool) []byte {
	if s == Event {
		dst = append(dst, eventPrefix...)
	} else {
		dst = append(dst, linePrefix...)
	}
	if stamp {
		dst = t.UTC().AppendFormat(dst, timeFormat)
		dst = append(dst, ' ')
	}
	if s == Event && f.color {
		dst = append(dst, bold...)
		dst = append(dst, text...)
		dst = append(dst, reset...)
	} else {
		dst = append(dst, text...)
	}
	return append(dst, '\n')
}

// appendLines appends each line of text, lines joined by newlines, as
// prefix, the line and a newline (appendLine's format for a container's
// line, without a time), and says how many lines that was. Where the
// SIMD kernel runs (scan_amd64.s) and the prefix fits its vector, it
// copies 32 bytes at a time and puts the prefix after each newline; the
// loop below does the tail, and all of it elsewhere.
func appendLines(dst, prefix, text []byte) ([]byte, int) {
	dst = append(dst, prefix...)
	lines := 1
	if simd && len(prefix) <= 32 {
		var vec [32]byte
		copy(vec[:], prefix)
		for len(text) >= 32 {
			// Room for the text, a prefix every 64 bytes and what the
			// kernel writes ahead; with more lines than that, it stops
			// short and the next round grows dst again.
			if need := len(text) + len(text)/64*len(prefix) + 128; cap(dst)-len(dst) < need {
				dst = slices.Grow(dst, need)
			}
			ns, nd, n := prefixLinesAVX2(dst[len(dst):cap(dst)], text, &vec, len(prefix))
			dst, text = dst[:len(dst)+nd], text[ns:]
			lines += n
			if ns == 0 {
				break
			}
		}
	}
	for {
		i := bytes.IndexByte(text, '\n')
		if i < 0 {
			break
		}
		dst = append(dst, text[:i+1]...)
		dst = append(dst, prefix...)
		lines++
		text = text[i+1:]
	}
	dst = append(dst, text...)
	return append(dst, '\n'), lines
}
