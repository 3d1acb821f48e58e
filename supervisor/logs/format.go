package logs

import (
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
