package supervisor

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/stack-containers/stack/manifest"
)

// graph is the "starts after" relation of a stack's containers: depends_on
// and join both order a container after the one it names.
type graph struct {
	// after maps a container to the containers it waits for.
	after map[string][]string
	// before maps a container to the containers that wait for it.
	before map[string][]string
}

// stackGraph builds the ordering of s's containers.
func stackGraph(s *manifest.Stack) (*graph, error) {
	deps := make(map[string][]string, len(s.Containers))
	for name, c := range s.Containers {
		deps[name] = append([]string{}, c.DependsOn...)
		for _, d := range c.Join {
			deps[name] = append(deps[name], d)
		}
	}
	return newGraph(deps)
}

// newGraph builds the ordering in which each container of deps comes after
// the ones it lists. It refuses a cycle or a name that is not a container:
// manifest.Load already checks both, but a cycle here would hang a start.
func newGraph(deps map[string][]string) (*graph, error) {
	g := &graph{after: map[string][]string{}, before: map[string][]string{}}
	for name, ds := range deps {
		g.after[name] = nil
		for _, d := range slices.Compact(slices.Sorted(slices.Values(ds))) {
			if _, ok := deps[d]; !ok {
				return nil, fmt.Errorf("container %q: depends on unknown container %q", name, d)
			}
			g.after[name] = append(g.after[name], d)
			g.before[d] = append(g.before[d], name)
		}
	}
	for _, v := range g.before {
		sort.Strings(v)
	}
	if cycle := g.cycle(); cycle != nil {
		return nil, fmt.Errorf("containers depend on each other in a cycle: %s", strings.Join(cycle, " -> "))
	}
	return g, nil
}

// names returns every container, sorted.
func (g *graph) names() []string {
	names := make([]string, 0, len(g.after))
	for n := range g.after {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// cycle returns one dependency cycle, or nil.
func (g *graph) cycle() []string {
	const (
		unseen = iota
		onPath
		finished
	)
	mark := map[string]int{}
	var path []string
	var visit func(n string) []string
	visit = func(n string) []string {
		mark[n] = onPath
		path = append(path, n)
		for _, d := range g.after[n] {
			switch mark[d] {
			case onPath:
				i := 0
				for path[i] != d {
					i++
				}
				return append(append([]string{}, path[i:]...), d)
			case unseen:
				if c := visit(d); c != nil {
					return c
				}
			}
		}
		path = path[:len(path)-1]
		mark[n] = finished
		return nil
	}
	for _, n := range g.names() {
		if mark[n] == unseen {
			if c := visit(n); c != nil {
				return c
			}
		}
	}
	return nil
}

// reversed is the graph for stopping: a container stops only after every
// container that depends on it has stopped.
func (g *graph) reversed() *graph {
	return &graph{after: withAllKeys(g.before, g.after), before: g.after}
}

// withAllKeys returns m with an empty entry for every key of all that m lacks.
func withAllKeys(m, all map[string][]string) map[string][]string {
	out := make(map[string][]string, len(all))
	for k := range all {
		out[k] = m[k]
	}
	return out
}

// walk calls fn for every container, at most limit at a time, each one only
// once fn has returned nil for everything it comes after; independent
// containers run concurrently. The first error cancels ctx, no further
// container is begun, and walk returns that error once the calls under way
// have returned.
func (g *graph) walk(parent context.Context, limit int, fn func(ctx context.Context, name string) error) error {
	eg, ctx := errgroup.WithContext(parent)
	eg.SetLimit(limit)
	waiting := map[string]int{}
	var ready []string
	for _, n := range g.names() {
		waiting[n] = len(g.after[n])
		if waiting[n] == 0 {
			ready = append(ready, n)
		}
	}
	// finished is buffered for every container so that no call ever blocks
	// on reporting, even after walk has stopped reading.
	finished := make(chan string, len(waiting))
	for left := len(waiting); left > 0; left-- {
		// A call that finished and the cancellation it caused may reach
		// the select below together, and select picks either: what is
		// ready now is begun only while the walk is still on.
		if ctx.Err() != nil {
			if err := eg.Wait(); err != nil {
				return err
			}
			// Cancelled from outside, every call under way returning nil.
			return parent.Err()
		}
		for _, n := range ready {
			eg.Go(func() error {
				// Go may have waited for a free slot, long enough for
				// the walk to be cancelled meanwhile.
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := fn(ctx, n); err != nil {
					return err
				}
				finished <- n
				return nil
			})
		}
		ready = ready[:0]
		select {
		case n := <-finished:
			for _, d := range g.before[n] {
				if waiting[d]--; waiting[d] == 0 {
					ready = append(ready, d)
				}
			}
		case <-ctx.Done():
			// Handled at the top of the loop.
		}
	}
	return eg.Wait()
}
