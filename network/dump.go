package network

import (
	"errors"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/stack-containers/stack/internal/linux"
)

// dumpRetry paces the dumps made again when the kernel interrupted one:
// the pauses double from a millisecond to 16, so that a lull of a few
// tens of milliseconds between bursts of changes is not missed, and the
// dumps give up after two seconds of changes without one, longer than a
// stack's start makes veth pairs on a slow machine.
var dumpRetry = linux.Backoff{First: time.Millisecond, Max: 16 * time.Millisecond, Total: 2 * time.Second}

// consistentDump makes a netlink dump (links, addresses, routes) until
// the kernel reports it whole. A dump that spans several messages while
// the table changes (another stack's start or down, a container's
// namespace ending, a container's veth made) is flagged
// NLM_F_DUMP_INTR, which netlink returns as ErrDumpInterrupted beside
// what it read: a list that may miss a device, a route or an address,
// which Remove would then leave behind and a subnet choice would not
// avoid. Only when dumps were interrupted for all of dumpRetry's time is
// the error returned, with the last dump's list.
//
// The attempts pause, longer each time, rather than follow each other at
// once: the changes come in bursts (a start makes a veth pair per
// container), and on a slow machine a burst outlasts many dumps in a
// row, where a dump made after it, or in a lull within it, is whole.
func consistentDump[T any](dump func() ([]T, error)) ([]T, error) {
	var list []T
	var err error
	// Poll's own result says no more than err does: the dump's error is
	// never Poll's, and a dump still interrupted when the time ran out
	// left ErrDumpInterrupted in err.
	_, _ = dumpRetry.Poll(func() (bool, error) {
		list, err = dump()
		return !errors.Is(err, netlink.ErrDumpInterrupted), nil
	})
	return list, err
}
