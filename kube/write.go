package kube

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// header is the comment the output starts with.
func (ex *Export) header() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Kubernetes objects for stack %q, from %s,\n", ex.Stack, ex.Source)
	b.WriteString("# written by `stack export kubernetes`. Apply them with `kubectl apply -f`.\n")
	b.WriteString("# Each object's comment says which container it comes from; a \"note:\"\n")
	b.WriteString("# is something of the manifest that Kubernetes does not carry as it is.\n")
	for _, n := range ex.StackNotes {
		b.WriteString("# note: " + n.String() + "\n")
	}
	return b.String()
}

// document prints one object: its comments, then the object as YAML.
func document(o Object) ([]byte, error) {
	js, err := json.Marshal(o.Object)
	if err != nil {
		return nil, fmt.Errorf("print %s %s: %w", o.Kind, o.Name, err)
	}
	var tree map[string]any
	if err := json.Unmarshal(js, &tree); err != nil {
		return nil, fmt.Errorf("print %s %s: %w", o.Kind, o.Name, err)
	}
	data, err := yaml.Marshal(prune(tree))
	if err != nil {
		return nil, fmt.Errorf("print %s %s: %w", o.Kind, o.Name, err)
	}
	var b bytes.Buffer
	for _, c := range o.Comments {
		b.WriteString("# " + c + "\n")
	}
	b.Write(data)
	return b.Bytes(), nil
}

// prune leaves out what the Go types print although nothing was set: an
// object's status (the cluster's to write), a null creationTimestamp and
// an empty resources. Other empty mappings mean something (emptyDir: {})
// and stay.
func prune(tree map[string]any) map[string]any {
	delete(tree, "status")
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ts, ok := v["creationTimestamp"]; ok && ts == nil {
				delete(v, "creationTimestamp")
			}
			if r, ok := v["resources"].(map[string]any); ok && len(r) == 0 {
				delete(v, "resources")
			}
			if m, ok := v["metadata"].(map[string]any); ok && len(m) == 0 {
				delete(v, "metadata")
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(tree)
	return tree
}

// Write prints every object to w as one YAML stream, one document per
// object, after the header.
func (ex *Export) Write(w io.Writer) error {
	var b bytes.Buffer
	b.WriteString(ex.header())
	for _, o := range ex.Objects {
		doc, err := document(o)
		if err != nil {
			return err
		}
		b.WriteString("---\n")
		b.Write(doc)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// FileName is the name WriteDir gives an object's file: NAME-KIND.yaml,
// lower-case.
func (o Object) FileName() string {
	return strings.ToLower(o.Name + "-" + o.Kind + ".yaml")
}

// WriteDir writes one file per object into dir (made if missing), each
// with the header, and returns the files' paths. `kubectl apply -f DIR`
// takes them all.
func (ex *Export) WriteDir(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("make output directory: %w", err)
	}
	var files []string
	for _, o := range ex.Objects {
		doc, err := document(o)
		if err != nil {
			return nil, err
		}
		p := filepath.Join(dir, o.FileName())
		if err := os.WriteFile(p, append([]byte(ex.header()), doc...), 0o644); err != nil {
			return nil, fmt.Errorf("write %s: %w", p, err)
		}
		files = append(files, p)
	}
	return files, nil
}
