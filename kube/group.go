package kube

import (
	"maps"
	"slices"
	"strings"

	"github.com/stack-containers/stack/manifest"
)

// group is the containers that share one Pod: owner joins nothing, and
// the others join owner's namespaces, directly or through each other.
type group struct {
	owner   *manifest.Container
	joiners []*manifest.Container // sorted by name
}

// members is the owner, then the joiners.
func (g *group) members() []*manifest.Container {
	return append([]*manifest.Container{g.owner}, g.joiners...)
}

// group puts containers connected by join into one Pod each, sorted by
// the owner's name. A Pod has one set of namespaces, so a group with two
// containers that join nothing (a joins b's net and c's ipc) cannot be one
// Pod: it is refused.
func (cv *converter) group() []*group {
	parent := map[string]string{}
	var find func(string) string
	find = func(n string) string {
		if p, ok := parent[n]; ok && p != n {
			r := find(p)
			parent[n] = r
			return r
		}
		return n
	}
	names := slices.Sorted(maps.Keys(cv.st.Containers))
	for _, n := range names {
		parent[n] = n
	}
	for _, n := range names {
		for _, target := range cv.st.Containers[n].Join {
			if _, ok := cv.st.Containers[target]; !ok {
				continue
			}
			a, b := find(n), find(target)
			if a != b {
				parent[max(a, b)] = min(a, b)
			}
		}
	}
	byRoot := map[string][]*manifest.Container{}
	for _, n := range names {
		r := find(n)
		byRoot[r] = append(byRoot[r], cv.st.Containers[n])
	}
	var groups []*group
	for _, r := range slices.Sorted(maps.Keys(byRoot)) {
		var g group
		var owners []string
		for _, c := range byRoot[r] {
			if len(c.Join) == 0 {
				owners = append(owners, c.Name)
				if g.owner == nil {
					g.owner = c
					continue
				}
			}
			g.joiners = append(g.joiners, c)
		}
		if len(owners) != 1 {
			for _, c := range byRoot[r] {
				if len(c.Join) > 0 {
					cv.problem("containers."+c.Name+".join", false,
						"joins namespaces of %s, which own theirs: a Kubernetes Pod has one set of namespaces, so they cannot share one; join one container only",
						strings.Join(owners, " and "))
				}
			}
			continue
		}
		groups = append(groups, &g)
	}
	return groups
}

// kubeName is a container's name as Kubernetes allows it: '_' becomes '-'.
func kubeName(name string) string { return strings.ReplaceAll(name, "_", "-") }
