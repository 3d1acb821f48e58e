package kube

import (
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// locator finds a field's line and column in the manifest for the
// problems Convert reports. The stack it converts was validated by
// manifest.Load, which keeps no positions; reading the file again is
// cheaper than carrying them all. A field it cannot find (behind an alias
// or a merge key) is reported without a position.
type locator struct {
	root *yaml.Node
}

func newLocator(file string) *locator {
	data, err := os.ReadFile(file)
	if err != nil {
		return &locator{}
	}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return &locator{}
	}
	return &locator{root: doc.Content[0]}
}

var indexRE = regexp.MustCompile(`^(.*)\[(\d+)\]$`)

// find returns the position of the field at path ("containers.web.mounts[1]"):
// of its key when key is true, else of its value.
func (l *locator) find(path string, key bool) (line, col int) {
	n := l.root
	var keyNode *yaml.Node
	for _, part := range strings.Split(path, ".") {
		index := -1
		if m := indexRE.FindStringSubmatch(part); m != nil {
			part = m[1]
			index, _ = strconv.Atoi(m[2])
		}
		if n == nil || n.Kind != yaml.MappingNode {
			return 0, 0
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				keyNode, next = n.Content[i], n.Content[i+1]
				break
			}
		}
		if next == nil {
			return 0, 0
		}
		n = next
		if index >= 0 {
			if n.Kind != yaml.SequenceNode || index >= len(n.Content) {
				return 0, 0
			}
			keyNode, n = n.Content[index], n.Content[index]
		}
	}
	if key && keyNode != nil {
		return keyNode.Line, keyNode.Column
	}
	if n == nil {
		return 0, 0
	}
	return n.Line, n.Column
}
