package manifest

import (
	"errors"
	"fmt"
	"strings"
)

// parseDotenv reads a .env file: KEY=VALUE lines, with an optional
// "export " before the key, blank lines and # comments ignored, CRLF line
// ends taken as LF. A value is
//
//   - unquoted: up to a " #" comment, spaces around it trimmed;
//   - 'single-quoted': exactly as written, across lines too;
//   - "double-quoted": across lines too, with \n, \r, \t, \", \\ and \$
//     escapes.
//
// Unquoted and double-quoted values are expanded like the manifest's
// strings, from lookup and then the keys defined above them (the same
// order Compose reads them in); a key defined twice keeps its last value.
// It returns the variables and a problem per line it cannot read; file
// names the file in them.
func parseDotenv(file string, data []byte, lookup lookupFunc) (map[string]string, []Problem) {
	vars := map[string]string{}
	var problems []Problem
	x := &expander{lookup: func(name string) (string, bool) {
		if v, ok := lookup(name); ok {
			return v, true
		}
		v, ok := vars[name]
		return v, ok
	}}
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		fail := func(col int, format string, args ...any) {
			problems = append(problems, Problem{File: file, Line: lineNo, Col: col, Msg: fmt.Sprintf(format, args...)})
		}
		line := strings.TrimLeft(lines[i], " \t")
		indent := len(lines[i]) - len(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "export"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			trimmed := strings.TrimLeft(rest, " \t")
			indent += len(line) - len(trimmed)
			line = trimmed
		}
		key, raw, ok := strings.Cut(line, "=")
		key = strings.TrimRight(key, " \t")
		if !ok {
			fail(indent+1, "expected KEY=VALUE, not %q", line)
			continue
		}
		if !envNameRE().MatchString(key) {
			fail(indent+1, "%q is not a valid variable name: letters, digits and '_', not starting with a digit", key)
			continue
		}
		start := strings.TrimLeft(raw, " \t")
		valueCol := indent + len(line) - len(start) + 1
		var (
			value string
			err   error
		)
		switch {
		case start != "" && (start[0] == '\'' || start[0] == '"'):
			var consumed int
			value, consumed, err = quotedValue(start, lines[i+1:])
			i += consumed
			if err == nil && start[0] == '"' {
				value, err = x.expand(value)
			}
		default:
			// Searched before the leading blanks are trimmed, so that
			// "KEY= # comment" is empty and "KEY=#x" is "#x".
			if c := inlineComment(raw); c >= 0 {
				raw = raw[:c]
			}
			value, err = x.expand(strings.TrimSpace(raw))
		}
		if err != nil {
			fail(valueCol, "%s: %v", key, err)
			continue
		}
		vars[key] = value
	}
	return vars, problems
}

// inlineComment returns where a " #" comment starts in an unquoted value,
// or -1.
func inlineComment(s string) int {
	for i := 1; i < len(s); i++ {
		if s[i] == '#' && (s[i-1] == ' ' || s[i-1] == '\t') {
			return i - 1
		}
	}
	return -1
}

// quotedValue reads the quoted value that starts raw, continuing on the
// lines after it while the quote is open. It returns the value (a
// double-quoted one with its escapes resolved, and \$ left as $$ for the
// expansion to make a literal $) and how many of more it used (all of
// them when the quote is never closed).
func quotedValue(raw string, more []string) (string, int, error) {
	quote := raw[0]
	s := raw[1:]
	used := 0
	var b strings.Builder
	for {
		i := 0
		for ; i < len(s); i++ {
			c := s[i]
			if c == quote {
				break
			}
			if quote == '"' && c == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					b.WriteByte('\n')
				case 'r':
					b.WriteByte('\r')
				case 't':
					b.WriteByte('\t')
				case '"', '\\':
					b.WriteByte(s[i])
				case '$':
					b.WriteString("$$")
				default:
					b.WriteByte('\\')
					b.WriteByte(s[i])
				}
				continue
			}
			b.WriteByte(c)
		}
		if i < len(s) {
			rest := strings.TrimLeft(s[i+1:], " \t")
			if rest != "" && rest[0] != '#' {
				return "", 0, fmt.Errorf("unexpected %q after the closing quote", rest)
			}
			return b.String(), used, nil
		}
		if used == len(more) {
			return "", used, errors.New("the quote is never closed")
		}
		b.WriteByte('\n')
		s = more[used]
		used++
	}
}
