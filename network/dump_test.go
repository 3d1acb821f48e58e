package network

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/stack-containers/stack/internal/linux"
)

func TestConsistentDumpRetriesInterrupted(t *testing.T) {
	// Short, so that the dump that is never whole gives up soon.
	saved := dumpRetry
	dumpRetry = linux.Backoff{First: 100 * time.Microsecond, Max: time.Millisecond, Total: 20 * time.Millisecond}
	t.Cleanup(func() { dumpRetry = saved })
	for _, tc := range []struct {
		name        string
		interrupted int // dumps interrupted before a whole one
		wantCalls   int // 0: more than one
		wantErr     error
	}{
		{"whole at once", 0, 1, nil},
		{"whole at the third", 2, 3, nil},
		{"never whole", 1 << 30, 0, netlink.ErrDumpInterrupted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			got, err := consistentDump(func() ([]int, error) {
				calls++
				if calls <= tc.interrupted {
					return []int{calls}, netlink.ErrDumpInterrupted
				}
				return []int{0, calls}, nil
			})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("after %d dumps: error %v; want %v", calls, err, tc.wantErr)
			}
			if (tc.wantCalls != 0 && calls != tc.wantCalls) || (tc.wantCalls == 0 && calls < 2) {
				t.Fatalf("%d dumps; want %d (0: more than one)", calls, tc.wantCalls)
			}
			if last := got[len(got)-1]; last != calls {
				t.Errorf("result %v, want the last dump's", got)
			}
		})
	}
	other := errors.New("no such device")
	calls := 0
	if _, err := consistentDump(func() ([]int, error) { calls++; return nil, other }); !errors.Is(err, other) || calls != 1 {
		t.Errorf("another error: %d dumps, %v; want 1, %v", calls, err, other)
	}
}

// TestListsWhileLinksChange: Remove and the subnet choice list links,
// addresses and routes while other links come and go, as another stack's
// start or down makes them; a dump the kernel interrupted must be made
// again, not fail (nor be acted on).
func TestListsWhileLinksChange(t *testing.T) {
	requireNetns(t)
	// Enough links that a dump takes several messages, during which the
	// others change.
	const standing = 120
	for i := range standing {
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: fmt.Sprintf("standing%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// In bursts, as a stack's start or down makes them: between bursts
	// a dump can be whole, however slow the machine.
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			for i := range 8 {
				l := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: fmt.Sprintf("churn%d", i)}}
				if err := netlink.LinkAdd(l); err == nil {
					netlink.LinkDel(l)
				}
			}
		}
	})
	defer func() {
		close(stop)
		wg.Wait()
		for i := range standing {
			if l, err := netlink.LinkByName(fmt.Sprintf("standing%d", i)); err == nil {
				netlink.LinkDel(l)
			}
		}
	}()
	for range 100 {
		if err := Remove("zz"); err != nil {
			t.Fatalf("Remove while links change: %v", err)
		}
		if _, err := usedPrefixes(); err != nil {
			t.Fatalf("usedPrefixes while links change: %v", err)
		}
	}
}
