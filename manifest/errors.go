package manifest

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Problem is one thing wrong with a manifest, located where YAML allows.
type Problem struct {
	// File is the manifest's path as it was given to Load.
	File string
	// Line and Col are 1-based; 0 when the problem has no position (Col
	// alone is 0 for YAML syntax errors, which only report a line).
	Line, Col int
	// Path is the field's path, such as "containers.web.memory"; empty for
	// problems with the document itself.
	Path string
	Msg  string
}

// String formats the problem as "file:line:col: path: problem", leaving out
// the parts it does not have.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
		if p.Col > 0 {
			fmt.Fprintf(&b, ":%d", p.Col)
		}
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error is returned by Load for an invalid manifest. It holds every problem
// found, sorted by position, so that a user fixes them in one pass.
type Error struct {
	Problems []Problem
}

// Error prints one problem per line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sortProblems orders problems by position, then path and message so that
// the order is the same on every run even for problems at one position.
func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Col, b.Col),
			cmp.Compare(a.Path, b.Path),
			cmp.Compare(a.Msg, b.Msg),
		)
	})
}
