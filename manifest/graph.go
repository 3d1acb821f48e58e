package manifest

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// link runs the checks that span containers, then fills in the defaults
// that depend on them: joined namespaces leave the default set, and the
// hostname needs a uts namespace of the container's own.
func (d *decoder) link(entries []*entry) {
	byName := map[string]*entry{}
	for _, e := range entries {
		byName[e.c.Name] = e
	}
	names := slices.Sorted(maps.Keys(byName))
	for _, e := range entries {
		d.linkJoin(e, byName, names)
		for _, target := range e.c.DependsOn {
			d.checkTarget(e, target, e.dependsOn[target], join(e.path, "depends_on"), byName, names)
		}
		d.checkConditions(e, byName)
		d.hostname(e)
		d.linkNetwork(e)
	}
	d.linkPorts(entries)
	d.cycles(byName, names)
}

// checkTarget reports a reference to a container that is not another one
// of the stack.
func (d *decoder) checkTarget(e *entry, target string, n *yaml.Node, path string, byName map[string]*entry, names []string) {
	if target == e.c.Name {
		d.errorf(n, path, "a container cannot depend on or join itself")
		return
	}
	if byName[target] == nil {
		msg := fmt.Sprintf("no container %q in this stack", target)
		if near := closest(target, names); near != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", near)
		}
		d.errorf(n, path, "%s", msg)
	}
}

func (d *decoder) linkJoin(e *entry, byName map[string]*entry, names []string) {
	for _, ns := range joinable {
		target, ok := e.c.Join[ns]
		if !ok {
			continue
		}
		d.checkTarget(e, target, e.join[ns], join(join(e.path, "join"), string(ns)), byName, names)
		if n := e.namespaces[ns]; n != nil {
			d.errorf(n, join(e.path, "namespaces"), "namespace %q is joined from %q, so it cannot also be created new", ns, target)
		}
	}
	if e.namespaces != nil {
		return
	}
	for _, ns := range defaultNamespaces {
		if _, joined := e.c.Join[ns]; !joined {
			e.c.Namespaces = append(e.c.Namespaces, ns)
		}
	}
}

// hostname checks an explicit hostname and fills in the default. Setting
// a hostname in a uts namespace the container does not own would rename
// another container or the host, so without one there is no hostname.
func (d *decoder) hostname(e *entry) {
	ownUTS := slices.Contains(e.c.Namespaces, NamespaceUTS)
	switch {
	case e.hostname != nil && !ownUTS:
		d.errorf(e.hostname, join(e.path, "hostname"), "needs a uts namespace of the container's own (add uts to namespaces, or leave hostname out)")
	case e.hostname == nil && ownUTS:
		// '_' is valid in a container name but not in a hostname.
		e.c.Hostname = strings.ReplaceAll(e.c.Name, "_", "-")
	}
}

// cycles reports every cycle a depth-first walk finds through depends_on
// and join, each written from its smallest name so that the message is
// the same on every run.
func (d *decoder) cycles(byName map[string]*entry, names []string) {
	edges := func(e *entry) []string {
		set := map[string]bool{}
		for _, t := range e.c.DependsOn {
			set[t] = true
		}
		for _, t := range e.c.Join {
			set[t] = true
		}
		delete(set, e.c.Name)
		var out []string
		for _, t := range slices.Sorted(maps.Keys(set)) {
			if byName[t] != nil {
				out = append(out, t)
			}
		}
		return out
	}
	const (
		unseen = iota
		onStack
		done
	)
	state := map[string]int{}
	var stack []string
	reported := map[string]bool{}
	var visit func(name string)
	visit = func(name string) {
		state[name] = onStack
		stack = append(stack, name)
		for _, next := range edges(byName[name]) {
			switch state[next] {
			case unseen:
				visit(next)
			case onStack:
				cycle := slices.Clone(stack[slices.Index(stack, next):])
				d.reportCycle(cycle, byName, reported)
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
	}
	for _, name := range names {
		if state[name] == unseen {
			visit(name)
		}
	}
}

// reportCycle reports cycle (a -> ... -> back to its first) once, at the
// reference that leaves its smallest name.
func (d *decoder) reportCycle(cycle []string, byName map[string]*entry, reported map[string]bool) {
	first := slices.Index(cycle, slices.Min(cycle))
	cycle = append(cycle[first:], cycle[:first]...)
	text := strings.Join(append(cycle, cycle[0]), " -> ")
	if reported[text] {
		return
	}
	reported[text] = true
	from, to := byName[cycle[0]], cycle[1%len(cycle)]
	n, path := from.dependsOn[to], join(from.path, "depends_on")
	if n == nil {
		for _, ns := range joinable {
			if from.c.Join[ns] == to {
				n, path = from.join[ns], join(join(from.path, "join"), string(ns))
				break
			}
		}
	}
	d.errorf(n, path, "dependency cycle through depends_on and join: %s", text)
}
