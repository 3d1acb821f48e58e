package manifest

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxNodes bounds how many nodes the decoder visits. Aliases let a small
// file name a huge tree ("billion laughs"); no real manifest comes close.
const maxNodes = 100_000

// decoder walks the YAML node tree of one manifest and collects problems
// instead of stopping at the first, so that Load reports them all.
type decoder struct {
	file     string
	problems []Problem
	// warnings are what the user should know but does not make the
	// manifest invalid.
	warnings []Problem
	// failed holds the values whose interpolation failed: that problem
	// is reported, and decoding them would only add a confusing second.
	failed map[*yaml.Node]bool
	// declared are the names of the top-level volumes.
	declared map[string]bool
	// home is the invoking user's home directory, for ~ in host paths.
	home    string
	visited int
	// exhausted is set once maxNodes is reached; decoding stops then.
	exhausted bool
}

// errorf records a problem located at n (which may be nil).
func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	p := Problem{File: d.file, Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line, p.Col = n.Line, n.Column
	}
	d.problems = append(d.problems, p)
}

// resolve follows aliases and counts the node against maxNodes. It returns
// nil once the budget is spent, which callers treat as "stop here".
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil || d.exhausted || d.failed[n] {
		return nil
	}
	d.visited++
	if d.visited > maxNodes {
		d.exhausted = true
		d.errorf(n, "", "manifest too large: more than %d YAML nodes once aliases are expanded", maxNodes)
		return nil
	}
	return n
}

// kindName names what a node holds, for "must be X, not Y" messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return "a string"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!null":
			return "null"
		default:
			return "a " + strings.TrimPrefix(n.ShortTag(), "!!")
		}
	}
	return "nothing"
}

// pair is one key and value of a mapping.
type pair struct {
	key, value *yaml.Node
}

// pairs returns a mapping's entries with merge keys ("<<: *base") applied:
// a key written in the mapping itself wins over a merged one. It reports
// keys given twice, which YAML forbids but the node parser lets through.
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	var out []pair
	seen := map[string]*yaml.Node{}
	var merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := d.resolve(n.Content[i]), n.Content[i+1]
		if k == nil {
			return out
		}
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "a key must be a plain value, not %s", kindName(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergeSources(v, path)...)
			continue
		}
		if first, ok := seen[k.Value]; ok {
			d.errorf(k, join(path, k.Value), "given twice (first at line %d)", first.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, pair{k, v})
	}
	for _, p := range merged {
		if _, ok := seen[p.key.Value]; !ok {
			seen[p.key.Value] = p.key
			out = append(out, p)
		}
	}
	return out
}

// mergeSources returns the entries a merge key brings in: one mapping, or a
// list of mappings where earlier ones win.
func (d *decoder) mergeSources(v *yaml.Node, path string) []pair {
	v = d.resolve(v)
	if v == nil {
		return nil
	}
	switch v.Kind {
	case yaml.MappingNode:
		return d.pairs(v, path)
	case yaml.SequenceNode:
		var out []pair
		seen := map[string]bool{}
		for _, item := range v.Content {
			item = d.resolve(item)
			if item == nil {
				return out
			}
			if item.Kind != yaml.MappingNode {
				d.errorf(item, path, "a merge (<<) takes mappings, not %s", kindName(item))
				continue
			}
			for _, p := range d.pairs(item, path) {
				if !seen[p.key.Value] {
					seen[p.key.Value] = true
					out = append(out, p)
				}
			}
		}
		return out
	}
	d.errorf(v, path, "a merge (<<) takes a mapping or a list of mappings, not %s", kindName(v))
	return nil
}

// fields checks a mapping against the keys it may hold and returns its
// values by key. Unknown keys are reported with the closest known one.
func (d *decoder) fields(n *yaml.Node, path string, known []string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	for _, p := range d.pairs(n, path) {
		if !slices.Contains(known, p.key.Value) {
			msg := fmt.Sprintf("unknown field %q", p.key.Value)
			if near := closest(p.key.Value, known); near != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", near)
			}
			d.errorf(p.key, path, "%s", msg)
			continue
		}
		out[p.key.Value] = p.value
	}
	return out
}

// expect resolves n and reports a problem unless it is of the given kind.
func (d *decoder) expect(n *yaml.Node, path string, kind yaml.Kind, what string) *yaml.Node {
	n = d.resolve(n)
	if n == nil {
		return nil
	}
	if n.Kind != kind {
		d.errorf(n, path, "must be %s, not %s", what, kindName(n))
		return nil
	}
	return n
}

// isString reports whether n is a scalar read as text: anything but a
// number, boolean or null (so a timestamp or a custom tag is its text, as
// a YAML-to-JSON conversion in an editor would have it).
func isString(n *yaml.Node) bool {
	if n.Kind != yaml.ScalarNode {
		return false
	}
	switch n.ShortTag() {
	case "!!int", "!!float", "!!bool", "!!null":
		return false
	}
	return true
}

// str returns the value of a string scalar, reporting anything else.
func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	n = d.resolve(n)
	if n == nil {
		return "", false
	}
	if !isString(n) {
		d.errorf(n, path, "must be a string, not %s", kindName(n))
		return "", false
	}
	return n.Value, true
}

// closest returns the known word within a small edit distance of s (one
// for short words, two for longer ones), or "".
func closest(s string, known []string) string {
	limit := min(2, max(1, len(s)/3))
	best, bestDist := "", limit+1
	for _, k := range known {
		if dist := editDistance(strings.ToLower(s), k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// join appends a key to a field path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// index appends a list index to a field path.
func index(path string, i int) string {
	return fmt.Sprintf("%s[%d]", path, i)
}
