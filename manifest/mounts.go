package manifest

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// volumeNameRE is Docker's form of a volume name: it keeps the name usable
// as a directory name and tells it from a path.
var volumeNameRE = lazyRegexp(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)

// volumes decodes the top-level `volumes`: names, each with null or an
// empty mapping ({}), as Compose writes them. It returns the names,
// sorted, and records them for the containers' mounts.
func (d *decoder) volumes(n *yaml.Node) []string {
	const path = "volumes"
	m := d.expect(n, path, yaml.MappingNode, "a mapping of volume names to {}")
	if m == nil {
		return nil
	}
	d.declared = map[string]bool{}
	var names []string
	for _, p := range d.pairs(m, path) {
		name, vp := p.key.Value, join(path, p.key.Value)
		if !volumeNameRE().MatchString(name) {
			d.errorf(p.key, vp, "invalid volume name %q: use 1 to 128 letters, digits, '_', '.' or '-', starting with a letter or digit", name)
			continue
		}
		d.declared[name] = true
		names = append(names, name)
		v := d.resolve(p.value)
		if v == nil || v.ShortTag() == "!!null" {
			continue
		}
		if v.Kind != yaml.MappingNode {
			d.errorf(v, vp, "must be {} (a volume has no options), not %s", kindName(v))
			continue
		}
		// No option is known: every field is reported as unknown.
		d.fields(v, vp, nil)
	}
	slices.Sort(names)
	return names
}

func (d *decoder) mounts(n *yaml.Node, path, dir string) []Mount {
	seq := d.expect(n, path, yaml.SequenceNode, "a list of host:container[:ro|rw] or volume:container[:ro|rw]")
	if seq == nil {
		return nil
	}
	var out []Mount
	targets := map[string]bool{}
	for i, item := range seq.Content {
		ip := index(path, i)
		s, ok := d.str(item, ip)
		if !ok {
			continue
		}
		m, err := d.parseMount(s, dir)
		if err != nil {
			d.errorf(item, ip, "%v", err)
			continue
		}
		if targets[m.Target] {
			d.errorf(item, ip, "%s is mounted over twice", m.Target)
			continue
		}
		targets[m.Target] = true
		out = append(out, m)
	}
	return out
}

// isHostPath reports whether the source of a mount names a host path
// rather than a named volume, as Compose tells them apart.
func isHostPath(s string) bool {
	return strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") || strings.HasPrefix(s, "~")
}

// parseMount reads "host:container[:ro|rw]" and "volume:container[:ro|rw]".
// A host path that is missing is no problem of the manifest's: up creates
// it, as Docker does.
func (d *decoder) parseMount(s, dir string) (Mount, error) {
	parts := strings.Split(s, ":")
	var m Mount
	switch {
	case len(parts) == 3 && (parts[2] == "ro" || parts[2] == "rw"):
		m.ReadOnly = parts[2] == "ro"
	case len(parts) == 3:
		return m, fmt.Errorf("mount %q: mode must be ro or rw, not %q", s, parts[2])
	case len(parts) != 2:
		return m, fmt.Errorf("mount %q is not host:container[:ro|rw]", s)
	}
	source := parts[0]
	if source == "" || strings.ContainsRune(source, 0) {
		return m, fmt.Errorf("mount %q: the host path is empty or contains a NUL byte", s)
	}
	target, err := cleanAbs(parts[1])
	if err != nil {
		return m, fmt.Errorf("mount %q: the container path %w", s, err)
	}
	if target == "/" {
		return m, fmt.Errorf("mount %q: cannot mount over the container's root; use rootfs", s)
	}
	m.Target = target
	if isHostPath(source) {
		m.Source, err = d.hostSource(source, dir)
		if err != nil {
			return m, fmt.Errorf("mount %q: %w", s, err)
		}
		return m, nil
	}
	if !volumeNameRE().MatchString(source) {
		if strings.Contains(source, "/") {
			return m, fmt.Errorf("mount %q: %q is neither a volume name nor a host path; a host path starts with /, . or ~ (write \"./%s:%s\" for a bind mount)", s, source, source, parts[1])
		}
		return m, fmt.Errorf("mount %q: invalid volume name %q: use letters, digits, '_', '.' or '-', starting with a letter or digit; a host path starts with /, . or ~", s, source)
	}
	if !d.declared[source] {
		msg := fmt.Sprintf("mount %q: volume %q is not declared; add it to the top-level volumes (volumes: {%s: {}})", s, source, source)
		if near := closest(source, slices.Sorted(maps.Keys(d.declared))); near != "" {
			msg = fmt.Sprintf("mount %q: volume %q is not declared (did you mean %q?)", s, source, near)
		}
		return m, fmt.Errorf("%s, or write ./%s for a bind mount of a directory", msg, source)
	}
	m.Volume = source
	return m, nil
}

// hostSource resolves a bind mount's host path: "~" and "~/..." against
// the invoking user's home, a relative path against the manifest's
// directory.
func (d *decoder) hostSource(p, dir string) (string, error) {
	if rest, ok := strings.CutPrefix(p, "~"); ok {
		if rest != "" && rest[0] != '/' {
			return "", fmt.Errorf("%q: only ~ and ~/ stand for a home directory (the invoking user's); write another user's home as an absolute path", p)
		}
		if d.home == "" || !filepath.IsAbs(d.home) {
			return "", fmt.Errorf("%q: the invoking user's home directory is not known; write the path out", p)
		}
		return filepath.Join(d.home, rest), nil
	}
	return hostPath(p, dir), nil
}
