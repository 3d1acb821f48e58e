package manifest

import (
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/stack-containers/stack/internal/capability"
	"github.com/stack-containers/stack/seccomp"
)

// The seccomp field's keywords; anything else is a profile's path.
const (
	SeccompDefault    = "default"
	SeccompUnconfined = "unconfined"
)

// capabilities decodes cap_add or cap_drop: names in any case, with or
// without CAP_, or ALL. Each comes back canonical ("CAP_NET_ADMIN").
func (d *decoder) capabilities(n *yaml.Node, path string) []string {
	seq := d.expect(n, path, yaml.SequenceNode, "a list of capabilities")
	if seq == nil {
		return nil
	}
	out := []string{}
	for i, item := range seq.Content {
		s, ok := d.str(item, index(path, i))
		if !ok {
			continue
		}
		c, err := capability.Canonical(s)
		if err != nil {
			d.errorf(item, index(path, i), "%v", err)
			continue
		}
		out = append(out, c)
	}
	return out
}

// seccomp decodes the seccomp field. A profile file is read and checked
// now, so that a broken one stops `up` before anything starts; its parsed
// form travels with the container.
func (d *decoder) seccomp(c *Container, n *yaml.Node, path, dir string) {
	s, ok := d.str(n, path)
	if !ok {
		return
	}
	switch s {
	case SeccompDefault:
		c.Seccomp, c.SeccompProfile = SeccompDefault, seccomp.Default()
		return
	case SeccompUnconfined:
		c.Seccomp, c.SeccompProfile = SeccompUnconfined, seccomp.Unconfined()
		return
	case "":
		d.errorf(n, path, "must be default, unconfined or the path of a profile")
		return
	}
	file := hostPath(s, dir)
	data, err := os.ReadFile(file)
	if err != nil {
		d.errorf(n, path, "%s", statError("seccomp profile", s, err))
		return
	}
	p, err := seccomp.Parse(data)
	if err != nil {
		d.errorf(n, path, "%s: %v", s, err)
		return
	}
	c.Seccomp, c.SeccompProfile = file, p
}
