// Package network gives a stack a network of its own: a bridge on the host
// with the stack's gateway address, one veth pair per attached container,
// the addresses of the stack's subnet, the nftables rules for outbound NAT,
// isolation and published ports, the listeners that carry published ports
// for connections made on the host itself, and the /etc/hosts and
// /etc/resolv.conf files a container is given. It knows links, addresses,
// rules and ports, never containers or manifests.
//
// # Lifecycle
//
//  1. Create (under a lock in the state root) picks the subnet, a free /24 in
//     10.89.0.0/16 unless one is asked for, refusing one that overlaps a host
//     route or address; makes the bridge with the gateway (.1) and a fixed
//     MAC; sets net.ipv4.ip_forward as Docker does; and adds the stack's
//     nftables table. Holding the lock until the bridge has its address is
//     what keeps two stacks coming up at once from choosing the same subnet:
//     the second one sees the first one's bridge route.
//  2. Interface names a container's veth pair, and AttachInto makes it for
//     each start (by the runtime, once the container's namespace exists):
//     the host end on the bridge, the other end made right in the
//     container's network namespace, and configured there as eth0 from
//     outside, through a netlink socket made in the namespace, all before
//     the container's init may go on. The container end's MAC is
//     derived from its address, so that a container restarted with the same
//     address is reached at once, without waiting for stale neighbour
//     entries of the others to expire.
//  3. Publish binds the published ports on the host and adds their DNAT
//     rules; Close of the returned Published closes the listeners.
//  4. Remove deletes the table and every link whose name starts with the
//     stack's prefix. It needs nothing but the stack's ID, so that `down`
//     cleans up after a supervisor that was killed.
//
// # Names
//
// Every device of a stack is named "stk" + the stack's ID (8 hex digits of
// a hash of its state directory): the bridge is exactly that, the host end
// of a container's veth adds "v" and the last octet of its address; the
// container end is made as eth0 inside the container's namespace, where
// nothing else has that name. A prefix per
// stack makes Remove exact after a crash; the common "stk" prefix is what
// the isolation rule matches other stacks' bridges by.
//
// # One nftables table per stack
//
// Each stack has its own table ("stack_" + ID) holding its NAT chains and
// its forward filter. Deleting the table removes every chain and rule of the
// stack in one atomic operation, with nothing to look up rule by rule, and
// a stack never edits a chain another stack (or the host) uses, so two
// stacks coming up and down at once never race on a shared chain. The cost
// is one more pass through the hooks per stack, which at stack counts of one
// host is negligible.
//
// # Published ports
//
// A connection from outside the host is DNATed to the container in the
// prerouting hook. A connection made on the host itself, to 127.0.0.1 above
// all, never passes prerouting, and DNAT of loopback traffic in the output
// hook would need route_localnet, which lets 127.0.0.0/8 be routed off the
// host (the kind of exposure CVE-2020-8558 was). Such connections reach a
// listener of the supervisor bound to HOST_IP:HOST_PORT instead, which
// relays them to the container (Docker's userland proxy does the same).
// Binding the listener first also makes a taken host port fail at once,
// with the kernel's own answer, before any rule exists. A port relays a
// bounded number of connections at once; at the bound it accepts no more
// until one ends, and new clients wait in the listener's backlog.
//
// UDP has no connections to relay: a UDP listener carries each client
// address's datagrams on a socket of its own, a flow, until the flow is
// idle. A port holds a bounded number of flows and gives a new client the
// place of the flow idle the longest (flows.go), so that datagrams from
// ever new source ports cost the supervisor, which the whole stack
// shares, no more than that. The bounds of all the ports together take at
// most half of the supervisor's descriptor limit (limits.go).
package network
