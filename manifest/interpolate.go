package manifest

import (
	"fmt"
	"strings"
)

// lookupFunc returns a variable's value and whether it is set at all (an
// empty value is set).
type lookupFunc func(name string) (string, bool)

// expander replaces the variables of a string the way Compose does:
//
//	$$               a literal $
//	$VAR, ${VAR}     VAR's value; unset is "" and reported to unset
//	${VAR:-default}  default when VAR is unset or empty
//	${VAR-default}   default when VAR is unset
//	${VAR:?message}  an error when VAR is unset or empty
//	${VAR?message}   an error when VAR is unset
//	${VAR:+other}    other when VAR is set and not empty, else ""
//	${VAR+other}     other when VAR is set, else ""
//
// A default, message or replacement may itself hold variables; it is only
// expanded when it is used, so ${A:-${B:?}} fails only when A is empty. A
// $ before anything that cannot start a name stays as written ("$5",
// "costs $"), as in Compose; "${" that does not form one of the above is
// an error, since it most likely means something the user did not get.
type expander struct {
	lookup lookupFunc
	// unset is called with every variable used without a value and without
	// a default; nil to ignore them.
	unset func(name string)
}

// expand returns s with its variables replaced.
func (x *expander) expand(s string) (string, error) {
	// The syntax first, on its own, so that a string with a syntax error
	// reports it whatever the values (a "required" error met earlier in
	// the string would hide it).
	if _, _, err := x.text(s, 0, false, false); err != nil {
		return "", err
	}
	out, _, err := x.text(s, 0, false, true)
	return out, err
}

// escapeDollars returns s written so that expand gives s back.
func escapeDollars(s string) string {
	return strings.ReplaceAll(s, "$", "$$")
}

// interpolationError is a ${...} that is not well formed.
type interpolationError struct {
	at  int // byte offset of the "$" in the string
	msg string
}

func (e *interpolationError) Error() string {
	return fmt.Sprintf("invalid interpolation at character %d: %s (write $$ for a literal $)", e.at+1, e.msg)
}

// requiredError is a ${VAR:?message} or ${VAR?message} whose variable has
// no value.
type requiredError struct {
	name, msg string
}

func (e *requiredError) Error() string {
	if e.msg == "" {
		return fmt.Sprintf("required variable %s is missing a value", e.name)
	}
	return fmt.Sprintf("required variable %s is missing a value: %s", e.name, e.msg)
}

// text expands s from i to its end or, inBraces, to the first '}' that
// closes nothing opened after i. It returns the expansion and the index it
// stopped at (that of the '}', or len(s)). Without eval it only finds the
// extent and the syntax errors: nothing is looked up, nothing required.
func (x *expander) text(s string, i int, inBraces, eval bool) (string, int, error) {
	var b strings.Builder
	for i < len(s) {
		c := s[i]
		if c == '}' && inBraces {
			return b.String(), i, nil
		}
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		switch next := s[i+1]; {
		case next == '$':
			b.WriteByte('$')
			i += 2
		case isNameStart(next):
			end := nameEnd(s, i+1)
			if eval {
				b.WriteString(x.value(s[i+1 : end]))
			}
			i = end
		case next == '{':
			v, end, err := x.braced(s, i, eval)
			if err != nil {
				return "", 0, err
			}
			b.WriteString(v)
			i = end
		default:
			b.WriteByte('$')
			i++
		}
	}
	return b.String(), i, nil
}

// braced expands the ${...} whose "$" is at s[at] and returns the index
// after its closing '}'.
func (x *expander) braced(s string, at int, eval bool) (string, int, error) {
	i := at + 2
	if i >= len(s) || !isNameStart(s[i]) {
		return "", 0, &interpolationError{at, `"${" must be followed by a variable name`}
	}
	end := nameEnd(s, i)
	name := s[i:end]
	if end == len(s) {
		return "", 0, &interpolationError{at, fmt.Sprintf(`"${%s" has no closing "}"`, name)}
	}
	if s[end] == '}' {
		if !eval {
			return "", end + 1, nil
		}
		return x.value(name), end + 1, nil
	}
	op := s[end : end+1]
	if op == ":" && end+1 < len(s) {
		op = s[end : end+2]
	}
	switch op {
	case ":-", "-", ":?", "?", ":+", "+":
	default:
		return "", 0, &interpolationError{at, fmt.Sprintf(`"${%s" is followed by %q; use }, :-, -, :?, ?, :+ or +`, name, s[end])}
	}
	value, set := "", false
	if eval {
		value, set = x.lookup(name)
	}
	empty := !set || (op[0] == ':' && value == "")
	kind := op[len(op)-1]
	// The argument is expanded only when it is what the whole stands for.
	arg, close, err := x.text(s, end+len(op), true, eval && (kind == '+') != empty)
	if err != nil {
		return "", 0, err
	}
	if close == len(s) {
		return "", 0, &interpolationError{at, fmt.Sprintf(`"${%s%s" has no closing "}"`, name, op)}
	}
	if !eval {
		return "", close + 1, nil
	}
	switch {
	case kind == '-' && empty, kind == '+' && !empty:
		return arg, close + 1, nil
	case kind == '+':
		return "", close + 1, nil
	case kind == '?' && empty:
		return "", 0, &requiredError{name, arg}
	}
	return value, close + 1, nil
}

// value is a variable's value, "" (and reported) when it is unset.
func (x *expander) value(name string) string {
	v, ok := x.lookup(name)
	if !ok && x.unset != nil {
		x.unset(name)
	}
	return v
}

func isNameStart(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// nameEnd returns the index after the variable name that starts at s[i].
func nameEnd(s string, i int) int {
	for i < len(s) && (isNameStart(s[i]) || '0' <= s[i] && s[i] <= '9') {
		i++
	}
	return i
}
