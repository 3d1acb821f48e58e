package network

import (
	"errors"

	"github.com/vishvananda/netlink"
)

// dumpAttempts bounds how often a netlink dump is made again when the
// kernel interrupted it.
const dumpAttempts = 10

// consistentDump makes a netlink dump (links, addresses, routes) until
// the kernel reports it whole. A dump that spans several messages while
// the table changes (another stack's start or down, a container's
// namespace ending, a container's veth made) is flagged
// NLM_F_DUMP_INTR, which netlink returns as ErrDumpInterrupted beside
// what it read: a list that may miss a device, a route or an address,
// which Remove would then leave behind and a subnet choice would not
// avoid. Only after dumpAttempts interrupted dumps in a row is the error
// returned.
func consistentDump[T any](dump func() ([]T, error)) ([]T, error) {
	for attempt := 1; ; attempt++ {
		list, err := dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) || attempt == dumpAttempts {
			return list, err
		}
	}
}
