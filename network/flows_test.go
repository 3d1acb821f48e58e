package network

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestRelayLimits(t *testing.T) {
	for _, c := range []struct {
		nofile       uint64
		tcp, udp     int
		conns, flows int
	}{
		{nofile: 1 << 20, tcp: 1, udp: 1, conns: maxConns, flows: maxFlows},
		{nofile: 1 << 20, tcp: 0, udp: 101, conns: 865, flows: maxFlows},
		{nofile: 1 << 20, tcp: 101, udp: 0, conns: 865, flows: maxFlows},
		{nofile: 4096, tcp: 0, udp: 1, conns: 341, flows: maxFlows},
		{nofile: 4096, tcp: 0, udp: 4, conns: 85, flows: 512},
		{nofile: 4096, tcp: 1, udp: 0, conns: 341, flows: maxFlows},
		{nofile: 4096, tcp: 2, udp: 2, conns: 85, flows: 512},
		{nofile: 20000, tcp: 0, udp: 101, conns: 16, flows: 99},
		{nofile: 1024, tcp: 1000, udp: 1000, conns: 1, flows: 1},
		{nofile: 1024, tcp: 0, udp: 0, conns: maxConns, flows: maxFlows},
	} {
		conns, flows := relayLimits(c.nofile, c.tcp, c.udp)
		if conns != c.conns || flows != c.flows {
			t.Errorf("relayLimits(%d, %d, %d) = %d, %d, want %d, %d", c.nofile, c.tcp, c.udp, conns, flows, c.conns, c.flows)
		}
		// Below one connection a port, each still gets one.
		if conns > 1 && uint64(c.tcp*conns*connFiles+c.udp*flows) > c.nofile/2 {
			t.Errorf("relayLimits(%d, %d, %d): the ports together take more than half the limit", c.nofile, c.tcp, c.udp)
		}
	}
}

// TestFlowTable checks the bookkeeping alone, on sockets that carry
// nothing: the flow idle the longest goes first, and goes closed.
func TestFlowTable(t *testing.T) {
	tab := newFlowTable(2)
	a, b, c := clientAddr(1), clientAddr(2), clientAddr(3)
	fa := tab.add(a, udpSocket(t))
	fb := tab.add(b, udpSocket(t))
	if tab.get(a) != fa {
		t.Fatal("get(a) is not a's flow")
	}
	// b is now the one idle the longest.
	fc := tab.add(c, udpSocket(t))
	if n := tab.len(); n != 2 {
		t.Errorf("%d flows in a table of 2", n)
	}
	if tab.get(b) != nil || !closed(fb.conn) {
		t.Error("b's flow, idle the longest, is still there or open")
	}
	if closed(fa.conn) || closed(fc.conn) {
		t.Error("a flow that was not evicted is closed")
	}
	// b comes back on a new flow, in place of a (c was used after it); the
	// goroutine of b's old flow, ending, leaves the new one alone.
	fb2 := tab.add(b, udpSocket(t))
	tab.remove(fb)
	if tab.get(b) != fb2 || tab.get(a) != nil {
		t.Error("b's new flow is not in the table, or a's is")
	}
	// A reply on c makes b the one idle the longest.
	tab.used(fc)
	fa2 := tab.add(a, udpSocket(t))
	if tab.get(b) != nil || tab.get(c) != fc || tab.get(a) != fa2 {
		t.Error("a reply did not count as use")
	}
	tab.close()
	if n := tab.len(); n != 0 || !closed(fc.conn) || !closed(fa2.conn) {
		t.Errorf("after close: %d flows, c's closed %v, a's closed %v", n, closed(fc.conn), closed(fa2.conn))
	}
}

func clientAddr(port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
}

func udpSocket(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closed tells whether c's descriptor has been closed.
func closed(c *net.UDPConn) bool {
	return errors.Is(c.SetReadDeadline(time.Time{}), net.ErrClosed)
}
