package manifest

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// variables are the values that ${VAR} takes: the stack command's
// environment first, then the .env file beside the manifest.
type variables struct {
	env, dotenv map[string]string
}

// environMap turns KEY=VALUE strings (os.Environ) into a map; an entry
// without "=" is ignored, a later entry wins.
func environMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			m[k] = v
		}
	}
	return m
}

func (v variables) lookup(name string) (string, bool) {
	if s, ok := v.env[name]; ok {
		return s, true
	}
	s, ok := v.dotenv[name]
	return s, ok
}

// interpolate replaces the variables of every string value in the tree
// under n, in place, before anything is decoded: every later problem then
// sees the values the user meant and still points at the line they are on.
// Keys are left as written, as Compose does. Aliases are not followed: the
// node they name is interpolated once, where it is defined. A plain
// (unquoted) value that becomes a number or a boolean is read as one, so
// that `memory: ${MEM}` and `read_only: ${RO}` work; a quoted one stays a
// string.
func (d *decoder) interpolate(n *yaml.Node, path string, x *expander) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			d.interpolate(c, path, x)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := path
			if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.ShortTag() != "!!merge" {
				p = join(path, k.Value)
			}
			d.interpolate(n.Content[i+1], p, x)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			d.interpolate(c, index(path, i), x)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") || !isString(n) {
			return
		}
		x.unset = func(name string) { d.unsetVariable(n, path, name) }
		v, err := x.expand(n.Value)
		if err != nil {
			d.errorf(n, path, "%v", err)
			if d.failed == nil {
				d.failed = map[*yaml.Node]bool{}
			}
			d.failed[n] = true
			return
		}
		if v == n.Value {
			return
		}
		n.Value = v
		if n.Style == 0 {
			// Read the new text as YAML reads a plain value, but only as
			// a number or a boolean: an empty or "null" result is the
			// string the user wrote a variable for.
			n.Tag = ""
			switch n.ShortTag() {
			case "!!int", "!!float", "!!bool":
			default:
				n.Tag = "!!str"
			}
		}
	}
}

// unsetVariable records the warning for a variable that has no value and
// no default, once per variable, at its first use.
func (d *decoder) unsetVariable(n *yaml.Node, path, name string) {
	msg := fmt.Sprintf("variable %s is not set; it stands for an empty string", name)
	for _, w := range d.warnings {
		if w.Msg == msg {
			return
		}
	}
	d.warnings = append(d.warnings, Problem{File: d.file, Line: n.Line, Col: n.Column, Path: path, Msg: msg})
}
