package manifest

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// testVars are the variables of the expansion tests: SET has a value,
// EMPTY is set to "", UNSET is not set at all.
var testVars = map[string]string{"SET": "value", "EMPTY": "", "OTHER": "other", "DOLLAR": "$HOME"}

func testLookup(name string) (string, bool) {
	v, ok := testVars[name]
	return v, ok
}

func TestExpand(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		unset    []string
	}{
		{"", "", nil},
		{"no variables", "no variables", nil},
		{"$SET", "value", nil},
		{"${SET}", "value", nil},
		{"a${SET}b", "avalueb", nil},
		{"$SET.txt", "value.txt", nil},
		{"$SETx", "", []string{"SETx"}},
		{"${SET}x", "valuex", nil},
		{"$UNSET", "", []string{"UNSET"}},
		{"${UNSET}", "", []string{"UNSET"}},
		{"${EMPTY}", "", nil},
		{"$$", "$", nil},
		{"$$SET", "$SET", nil},
		{"$${SET}", "${SET}", nil},
		{"$$$SET", "$value", nil},
		{"costs 5$", "costs 5$", nil},
		{"$5 and $ and $-", "$5 and $ and $-", nil},
		{"${SET:-d}", "value", nil},
		{"${EMPTY:-d}", "d", nil},
		{"${UNSET:-d}", "d", nil},
		{"${SET-d}", "value", nil},
		{"${EMPTY-d}", "", nil},
		{"${UNSET-d}", "d", nil},
		{"${UNSET:-}", "", nil},
		{"${UNSET:-a b: c}", "a b: c", nil},
		{"${UNSET:-${OTHER}}", "other", nil},
		{"${UNSET:-${EMPTY:-${OTHER}x}y}", "otherxy", nil},
		{"${UNSET:-$OTHER}", "other", nil},
		{"${UNSET:-$$}", "$", nil},
		{"${SET:-${NOPE}}", "value", nil},
		{"${UNSET:-${NOPE}}", "", []string{"NOPE"}},
		{"${SET:?must be set}", "value", nil},
		{"${EMPTY?may be empty}", "", nil},
		{"${SET:+yes}", "yes", nil},
		{"${EMPTY:+yes}", "", nil},
		{"${EMPTY+yes}", "yes", nil},
		{"${UNSET+yes}", "", nil},
		{"${UNSET:+${NOPE}}", "", nil},
		{"${SET:+${OTHER}}", "other", nil},
		{"${SET:?${UNSET2}}", "value", nil},
		{"${DOLLAR}", "$HOME", nil},
		{"${_under_1}", "", []string{"_under_1"}},
		{"}", "}", nil},
		{"{$SET}", "{value}", nil},
		{"${SET}}", "value}", nil},
		{"$SET$OTHER", "valueother", nil},
	} {
		var unset []string
		x := &expander{lookup: testLookup, unset: func(name string) { unset = append(unset, name) }}
		got, err := x.expand(tc.in)
		if err != nil || got != tc.want || !slices.Equal(unset, tc.unset) {
			t.Errorf("expand(%q) = %q, %v, unset %q; want %q, unset %q", tc.in, got, err, unset, tc.want, tc.unset)
		}
	}
}

func TestExpandErrors(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"${UNSET:?}", "required variable UNSET is missing a value"},
		{"${UNSET:?give it a value}", "required variable UNSET is missing a value: give it a value"},
		{"${EMPTY:?must not be empty}", "required variable EMPTY is missing a value: must not be empty"},
		{"${UNSET?}", "required variable UNSET is missing a value"},
		{"${UNSET:?set $OTHER}", "required variable UNSET is missing a value: set other"},
		{"${UNSET:-${NOPE:?inner}}", "required variable NOPE is missing a value: inner"},
		{"${", `invalid interpolation at character 1: "${" must be followed by a variable name (write $$ for a literal $)`},
		{"a ${}", `invalid interpolation at character 3: "${" must be followed by a variable name (write $$ for a literal $)`},
		{"${1}", `invalid interpolation at character 1: "${" must be followed by a variable name (write $$ for a literal $)`},
		{"${SET", `invalid interpolation at character 1: "${SET" has no closing "}" (write $$ for a literal $)`},
		{"${SET:-x", `invalid interpolation at character 1: "${SET:-" has no closing "}" (write $$ for a literal $)`},
		{"${SET:-${x}", `invalid interpolation at character 1: "${SET:-" has no closing "}" (write $$ for a literal $)`},
		{"${SET x}", `invalid interpolation at character 1: "${SET" is followed by ' '; use }, :-, -, :?, ?, :+ or + (write $$ for a literal $)`},
		{"${SET:x}", `invalid interpolation at character 1: "${SET" is followed by ':'; use }, :-, -, :?, ?, :+ or + (write $$ for a literal $)`},
		{"${SET:}", `invalid interpolation at character 1: "${SET" is followed by ':'; use }, :-, -, :?, ?, :+ or + (write $$ for a literal $)`},
		{"${SET:", `invalid interpolation at character 1: "${SET" is followed by ':'; use }, :-, -, :?, ?, :+ or + (write $$ for a literal $)`},
		// A syntax error in a branch that is not taken is still one.
		{"${SET:-${}", `invalid interpolation at character 8: "${" must be followed by a variable name (write $$ for a literal $)`},
	} {
		x := &expander{lookup: testLookup}
		got, err := x.expand(tc.in)
		if err == nil || err.Error() != tc.want {
			t.Errorf("expand(%q) = %q, %v; want the error %q", tc.in, got, err, tc.want)
		}
	}
}

func TestEscapeDollarsRoundTrip(t *testing.T) {
	for _, s := range []string{"", "$", "$$", "${SET}", "$SET", "a$b$$c${", "price: 5$"} {
		x := &expander{lookup: testLookup}
		got, err := x.expand(escapeDollars(s))
		if err != nil || got != s {
			t.Errorf("expand(escapeDollars(%q)) = %q, %v", s, got, err)
		}
	}
}

// FuzzExpand holds the expander to what the loader and `stack config`
// rely on: it never panics; a string without "$" is itself; an escaped
// string expands to itself; whether a string has a syntax error does not
// depend on the variables' values; with every variable set to text without
// "$", nothing is reported unset and no "required" error is possible.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"$SET", "${SET:-d}", "${A:-${B:?m}}", "$$", "${", "${A:+x}", "a$", "${A-}", "}${A}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		all := &expander{
			lookup: func(name string) (string, bool) { return "x" + name, true },
			unset:  func(name string) { t.Fatalf("expand(%q): %s reported unset, but every variable is set", s, name) },
		}
		none := &expander{lookup: func(string) (string, bool) { return "", false }}
		gotAll, errAll := all.expand(s)
		_, errNone := none.expand(s)
		var syntaxAll, syntaxNone *interpolationError
		if errors.As(errAll, &syntaxAll) != errors.As(errNone, &syntaxNone) {
			t.Fatalf("expand(%q): with every variable set %v, with none %v", s, errAll, errNone)
		}
		if errAll != nil && syntaxAll == nil {
			t.Fatalf("expand(%q) with every variable set: %v", s, errAll)
		}
		if !strings.Contains(s, "$") && (errAll != nil || gotAll != s) {
			t.Fatalf("expand(%q) = %q, %v; want it unchanged", s, gotAll, errAll)
		}
		if back, err := none.expand(escapeDollars(s)); err != nil || back != s {
			t.Fatalf("expand(escapeDollars(%q)) = %q, %v", s, back, err)
		}
	})
}
