package supervisor

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stack-containers/stack/manifest"
)

// stackOf builds a stack whose containers depend on each other as deps says.
func stackOf(deps map[string][]string, joins map[string]string) *manifest.Stack {
	s := &manifest.Stack{Name: "t", Containers: map[string]*manifest.Container{}}
	for n, d := range deps {
		s.Containers[n] = &manifest.Container{Name: n, DependsOn: d}
	}
	for n, j := range joins {
		s.Containers[n].Join = map[manifest.Namespace]string{manifest.NamespaceNet: j}
	}
	return s
}

func TestWalkOrder(t *testing.T) {
	g, err := stackGraph(stackOf(map[string][]string{
		"db": nil, "cache": nil, "api": {"db", "cache"}, "web": {"api"}, "side": nil,
	}, map[string]string{"side": "web"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		g    *graph
	}{{"start", g}, {"stop", g.reversed()}} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			done := map[string]bool{}
			err := tc.g.walk(context.Background(), 4, func(ctx context.Context, n string) error {
				mu.Lock()
				defer mu.Unlock()
				for _, d := range tc.g.after[n] {
					if !done[d] {
						t.Errorf("%s began before %s finished", n, d)
					}
				}
				done[n] = true
				return nil
			})
			if err != nil || len(done) != 5 {
				t.Fatalf("walk: %v, visited %v", err, done)
			}
		})
	}
}

func TestWalkRunsIndependentOnesConcurrently(t *testing.T) {
	g, err := stackGraph(stackOf(map[string][]string{"a": nil, "b": nil}, nil))
	if err != nil {
		t.Fatal(err)
	}
	// Each call waits for the other to have begun: only concurrent calls
	// can both return.
	var arrived sync.WaitGroup
	arrived.Add(2)
	both := make(chan struct{})
	go func() { arrived.Wait(); close(both) }()
	err = g.walk(context.Background(), 2, func(ctx context.Context, n string) error {
		arrived.Done()
		select {
		case <-both:
			return nil
		case <-time.After(10 * time.Second):
			return errors.New(n + " ran alone")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestWalkStopsAtFirstError(t *testing.T) {
	g, err := stackGraph(stackOf(map[string][]string{"db": nil, "api": {"db"}, "web": {"api"}}, nil))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var called []string
	boom := errors.New("boom")
	err = g.walk(context.Background(), 2, func(ctx context.Context, n string) error {
		mu.Lock()
		called = append(called, n)
		mu.Unlock()
		if n == "api" {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("walk = %v, want boom", err)
	}
	if strings.Join(called, ",") != "db,api" {
		t.Errorf("called %v, want db then api only", called)
	}
}

func TestWalkHonoursCancel(t *testing.T) {
	g, err := stackGraph(stackOf(map[string][]string{"a": nil, "b": {"a"}}, nil))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	err = g.walk(ctx, 1, func(ctx context.Context, n string) error {
		if n == "b" {
			t.Error("b began after cancel")
		}
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("walk = %v, want canceled", err)
	}
}

// TestWalkBeginsNothingAfterCancel: with one slot, the second independent
// container waits in errgroup's Go for the first to return, and the first
// cancels before it returns.
func TestWalkBeginsNothingAfterCancel(t *testing.T) {
	g, err := stackGraph(stackOf(map[string][]string{"a": nil, "b": nil}, nil))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var begun []string
	err = g.walk(ctx, 1, func(ctx context.Context, n string) error {
		begun = append(begun, n)
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || len(begun) != 1 {
		t.Fatalf("walk = %v after beginning %v; want canceled after beginning one", err, begun)
	}
}

func TestGraphRefusesCycleAndUnknown(t *testing.T) {
	_, err := stackGraph(stackOf(map[string][]string{"a": {"c"}, "b": {"a"}, "c": {"b"}}, nil))
	if err == nil || !strings.Contains(err.Error(), "a -> c -> b -> a") {
		t.Errorf("cycle: got %v", err)
	}
	_, err = stackGraph(stackOf(map[string][]string{"a": nil}, map[string]string{"a": "ghost"}))
	if err == nil || !strings.Contains(err.Error(), `unknown container "ghost"`) {
		t.Errorf("unknown: got %v", err)
	}
}
