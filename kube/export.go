package kube

import (
	"fmt"
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/stack-containers/stack/manifest"
)

// Options are the choices Convert cannot read from the manifest.
type Options struct {
	// Source is the manifest's path as the user gave it; the output's
	// header and the problems name it.
	Source string
	// Namespace is put on every object; empty leaves it to kubectl's
	// context.
	Namespace string
	// Images maps a rootfs path (manifest.Container.Rootfs) to the image
	// it was packed into and pushed as, referenced by digest.
	Images map[string]string
}

// Object is one Kubernetes object of the output.
type Object struct {
	// Object has its TypeMeta set, so that it prints with apiVersion and
	// kind.
	Object runtime.Object
	// Kind and Name name the object in file names and comments.
	Kind, Name string
	// Comments are the lines printed above the object: where it came from
	// and the notes of its containers.
	Comments []string
}

// Note is something of the manifest that Kubernetes does not carry as it
// is: a warning for the user, a comment in the output.
type Note struct {
	// Path is the field's path in the manifest, such as
	// "containers.web.pids".
	Path string
	Msg  string
}

func (n Note) String() string { return n.Path + ": " + n.Msg }

// Export is the result of Convert.
type Export struct {
	Stack   string
	Source  string
	Objects []Object
	// Notes are every note: the stack's, then every Object's, in the
	// order of the objects.
	Notes []Note
	// StackNotes are the notes of no one object, printed in the header.
	StackNotes []Note
}

// Error is a stack that cannot be exported as it is: every problem,
// located in the manifest where it can be.
type Error struct {
	Problems []manifest.Problem
}

func (e *Error) Error() string {
	s := ""
	for i, p := range e.Problems {
		if i > 0 {
			s += "\n"
		}
		s += p.String()
	}
	return s
}

// converter holds one Convert's state: the problems found so far and the
// names every container maps to.
type converter struct {
	st       *manifest.Stack
	opts     Options
	loc      *locator
	problems []manifest.Problem
	// names maps a container's name to its Kubernetes name; volumes a
	// named volume's to its claim's.
	names, volumes map[string]string
	// notes are the notes of objects that are not a Pod's.
	notes notes
}

// Convert maps a validated stack to Kubernetes objects. A stack that
// cannot be exported (a name Kubernetes refuses, a rootfs without an
// image) yields an *Error listing every problem.
func Convert(st *manifest.Stack, opts Options) (*Export, error) {
	if opts.Namespace != "" {
		if errs := validation.IsDNS1123Label(opts.Namespace); len(errs) > 0 {
			return nil, fmt.Errorf("namespace %q: %s", opts.Namespace, errs[0])
		}
	}
	if opts.Source == "" {
		opts.Source = st.File
	}
	cv := &converter{st: st, opts: opts, loc: newLocator(st.File), names: map[string]string{}}
	cv.mapNames()
	cv.mapVolumes()
	groups := cv.group()
	ex := &Export{Stack: st.Name, Source: opts.Source}
	if len(cv.problems) > 0 {
		return nil, cv.err()
	}
	ex.StackNotes = cv.stackNetwork()
	ex.Objects = cv.claims(groups)
	ex.Notes = slices.Concat(ex.StackNotes, cv.notes)
	for _, g := range groups {
		objs, notes := cv.pod(g)
		ex.Objects = append(ex.Objects, objs...)
		ex.Notes = append(ex.Notes, notes...)
	}
	if len(cv.problems) > 0 {
		return nil, cv.err()
	}
	return ex, nil
}

func (cv *converter) err() error {
	slices.SortStableFunc(cv.problems, func(a, b manifest.Problem) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		if a.Path < b.Path {
			return -1
		}
		if a.Path > b.Path {
			return 1
		}
		return 0
	})
	return &Error{Problems: slices.Compact(cv.problems)}
}

// problem records a value Kubernetes would refuse; key says whether the
// position is the field's key (a container's name) or its value.
func (cv *converter) problem(path string, key bool, format string, args ...any) {
	line, col := cv.loc.find(path, key)
	cv.problems = append(cv.problems, manifest.Problem{
		File: cv.opts.Source, Line: line, Col: col, Path: path, Msg: fmt.Sprintf(format, args...),
	})
}

// mapNames gives every container its Kubernetes name: the same, with '_'
// (which no Kubernetes name allows) replaced by '-'. The name must be a
// DNS-1035 label, as a Service's name is, so that it resolves in the
// cluster as it did on the stack's network; two containers that map to one
// name are refused.
func (cv *converter) mapNames() {
	byK8s := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(cv.st.Containers)) {
		k := kubeName(name)
		path := "containers." + name
		if errs := validation.IsDNS1035Label(k); len(errs) > 0 {
			cv.problem(path, true, "Kubernetes refuses %q as a Service name, which must start with a letter, hold only a-z, 0-9 and '-', and end with a letter or digit: rename the container", k)
			continue
		}
		if other, ok := byK8s[k]; ok {
			cv.problem(path, true, "maps to the Kubernetes name %q, which container %q has too ('_' becomes '-'): rename one of them", k, other)
			continue
		}
		byK8s[k] = name
		cv.names[name] = k
	}
}
