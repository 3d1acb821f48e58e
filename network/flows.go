package network

import (
	"container/list"
	"net"
	"net/netip"
	"sync"
)

// maxFlows is the most flows one published UDP port relays at once. A
// flow is one client address (IP and port) and lives until it has been
// idle for udpIdle. Only the host's own processes and the stack's
// containers come through here (other machines' datagrams are DNATed by
// the kernel), and the services a stack publishes over UDP (DNS, syslog,
// statsd, a game server) have a handful of clients each. The busiest
// honest client is a resolver that asks every query from a fresh source
// port: it needs more than 1024 flows only above some 34 queries a second
// for udpIdle on end, and then the flows given up are those of queries
// long answered. Without a bound, anything sending from ever new source
// ports made a socket and a goroutine each, until the supervisor, which
// the whole stack shares, ran out of descriptors.
const maxFlows = 1024

// flowTable is the flows of one published UDP port: for each client
// address, the socket connected to the container that carries its
// datagrams there and its replies back. It holds at most max of them,
// and a new client when it is full takes the place of the flow idle the
// longest, whose socket it closes (which ends that flow's goroutine).
//
// Evicting keeps serving: refusing new clients instead would let a flood
// of fresh source addresses lock every later client out until the
// flood's flows idle out, while a client that keeps talking stays near
// the front, loses its flow only once max other clients have been heard
// from since it last was, and then gets a new one with its next datagram. vpnkit's UDP NAT expires its
// oldest entry at its limit the same way.
type flowTable struct {
	max int

	mu     sync.Mutex
	flows  map[netip.AddrPort]*flow
	recent list.List // of *flow, the one used last in front
}

// flow is one client's: the socket connected to the container, and its
// place in the table's recent list.
type flow struct {
	client netip.AddrPort
	conn   *net.UDPConn
	elem   *list.Element
}

func newFlowTable(max int) *flowTable {
	return &flowTable{max: max, flows: map[netip.AddrPort]*flow{}}
}

// get returns client's flow, marked as used now, or nil when it has none.
func (t *flowTable) get(client netip.AddrPort) *flow {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.flows[client]
	if f != nil {
		t.recent.MoveToFront(f.elem)
	}
	return f
}

// add makes conn client's flow, used now, first closing the flow idle
// the longest when the table is full.
func (t *flowTable) add(client netip.AddrPort, conn *net.UDPConn) *flow {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.flows) >= t.max {
		if old := t.recent.Back(); old != nil {
			t.drop(old.Value.(*flow))
		}
	}
	f := &flow{client: client, conn: conn}
	f.elem = t.recent.PushFront(f)
	t.flows[client] = f
	return f
}

// used marks f as used now (a reply went back on it), if it is still in
// the table.
func (t *flowTable) used(f *flow) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.flows[f.client] == f {
		t.recent.MoveToFront(f.elem)
	}
}

// remove takes f out of the table, unless it is out already (evicted,
// and its client perhaps on a new flow since). It does not close f's
// socket: the flow's goroutine, which calls it, does that next.
func (t *flowTable) remove(f *flow) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.flows[f.client] == f {
		delete(t.flows, f.client)
		t.recent.Remove(f.elem)
	}
}

// drop takes f out of the table and closes its socket; t.mu is held.
func (t *flowTable) drop(f *flow) {
	delete(t.flows, f.client)
	t.recent.Remove(f.elem)
	f.conn.Close()
}

// len is the number of flows in the table.
func (t *flowTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.flows)
}

// close closes every flow's socket and empties the table.
func (t *flowTable) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, f := range t.flows {
		t.drop(f)
	}
}
