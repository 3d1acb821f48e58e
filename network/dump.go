package network

import (
	"errors"
	"time"

	"github.com/vishvananda/netlink"
)

// dumpAttempts bounds how often a netlink dump is made again when the
// kernel interrupted it, and firstDumpRetry, doubling up to
// lastDumpRetry, is the wait before each new attempt: a quarter of a
// second in all.
const (
	dumpAttempts   = 10
	firstDumpRetry = time.Millisecond
	lastDumpRetry  = 64 * time.Millisecond
)

// consistentDump makes a netlink dump (links, addresses, routes) until
// the kernel reports it whole. A dump that spans several messages while
// the table changes (another stack's start or down, a container's
// namespace ending, a container's veth made) is flagged
// NLM_F_DUMP_INTR, which netlink returns as ErrDumpInterrupted beside
// what it read: a list that may miss a device, a route or an address,
// which Remove would then leave behind and a subnet choice would not
// avoid. Only after dumpAttempts interrupted dumps in a row is the error
// returned.
//
// The attempts wait, longer each time, rather than follow each other at
// once: the changes come in bursts (a start makes a veth pair per
// container), and on a slow machine a burst outlasts ten dumps in a row,
// where a dump made after it is whole.
func consistentDump[T any](dump func() ([]T, error)) ([]T, error) {
	wait := firstDumpRetry
	for attempt := 1; ; attempt++ {
		list, err := dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) || attempt == dumpAttempts {
			return list, err
		}
		time.Sleep(wait)
		wait = min(2*wait, lastDumpRetry)
	}
}
