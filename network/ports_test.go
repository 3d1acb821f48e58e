package network

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stack-containers/stack/internal/testenv"
)

// TestRelayUDPBoundsFlows sends to a UDP relay on 127.0.0.1 from more
// client sockets than its table holds, to an echo server of the test's:
// the flows, and the descriptors, stay within the bound, the latest
// clients keep their flows, an evicted one gets a new flow, and closing
// leaves no goroutine and no descriptor.
func TestRelayUDPBoundsFlows(t *testing.T) {
	const limit, over = 8, 4
	goroutines, fds := runtime.NumGoroutine(), testenv.OpenFiles(t)

	echo := udpSocket(t)
	var echoing sync.WaitGroup
	echoing.Add(1)
	go func() {
		defer echoing.Done()
		echoUDP(echo)
	}()
	l := udpSocket(t)
	clients := make([]*net.UDPConn, limit+over)
	for i := range clients {
		c, err := net.DialUDP("udp4", nil, l.LocalAddr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		clients[i] = c
	}
	// What the relay opens: every flow's socket, and nothing else (the
	// listener is l, already counted).
	relayFDs := testenv.OpenFiles(t)

	ctx, cancel := context.WithCancel(context.Background())
	pub := &Published{cancel: cancel, closers: []io.Closer{l}}
	flows := newFlowTable(limit)
	pub.wg.Add(1)
	go pub.relayUDP(ctx, l, echo.LocalAddr().String(), flows)

	for i := range clients {
		ask(t, clients[i], fmt.Sprintf("from %d", i))
		if n := flows.len(); n > limit {
			t.Fatalf("%d flows after %d clients, more than the %d allowed", n, i+1, limit)
		}
		if n := testenv.OpenFiles(t) - relayFDs; n > limit {
			t.Fatalf("the relay holds %d descriptors after %d clients, more than its %d flows", n, i+1, limit)
		}
	}
	// The latest clients kept their flows, which replies go back on.
	for i := over; i < len(clients); i++ {
		if !hasFlow(flows, clients[i]) {
			t.Errorf("client %d, one of the latest %d, has no flow", i, limit)
		}
		ask(t, clients[i], fmt.Sprintf("again from %d", i))
	}
	for i := range over {
		if hasFlow(flows, clients[i]) {
			t.Errorf("client %d, one of the first %d, still has a flow", i, over)
		}
	}
	// An evicted client gets a new flow, in place of the one idle the
	// longest now, and a reply too big for anything but a whole buffer.
	big := string(bytes.Repeat([]byte("x"), 60000))
	ask(t, clients[0], big)
	if !hasFlow(flows, clients[0]) || hasFlow(flows, clients[over]) || flows.len() != limit {
		t.Errorf("after client 0 came back: it has a flow %v, client %d has one %v (want false), %d flows",
			hasFlow(flows, clients[0]), over, hasFlow(flows, clients[over]), flows.len())
	}

	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	if n := flows.len(); n != 0 {
		t.Errorf("%d flows after Close", n)
	}
	for _, c := range clients {
		c.Close()
	}
	echo.Close()
	echoing.Wait()
	// A goroutine is counted until it has returned, a moment after the
	// WaitGroup let Close go on.
	if !eventually(func() bool { return runtime.NumGoroutine() <= goroutines && testenv.OpenFiles(t) <= fds }) {
		t.Errorf("left behind: %d goroutines (began with %d), %d open files (began with %d)",
			runtime.NumGoroutine(), goroutines, testenv.OpenFiles(t), fds)
	}
}

// ask sends msg from c and checks that the echo of exactly msg comes back.
func ask(t *testing.T, c *net.UDPConn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	// Only so that a lost reply fails the test instead of hanging it.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("%.20q: %v", msg, err)
	}
	if got := string(buf[:n]); got != "echo "+msg {
		t.Fatalf("%.20q: the reply is %.30q (%d bytes)", msg, got, n)
	}
}

func hasFlow(flows *flowTable, c *net.UDPConn) bool {
	a := c.LocalAddr().(*net.UDPAddr).AddrPort()
	client := netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	flows.mu.Lock()
	defer flows.mu.Unlock()
	return flows.flows[client] != nil
}

// TestWaitReadable checks the wait for a reply that holds no buffer: it
// returns once a datagram is there and leaves it whole to read, returns
// the refusal of a port nobody listens on, and ends at the deadline and
// on close.
func TestWaitReadable(t *testing.T) {
	server := udpSocket(t)
	c, err := net.DialUDP("udp4", nil, server.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := server.WriteToUDPAddrPort([]byte("a reply"), c.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
	if err := waitReadable(c); err != nil {
		t.Fatalf("with a datagram there: %v", err)
	}
	buf := make([]byte, 100)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "a reply" {
		t.Errorf("the datagram after the wait: %q, %v", buf[:n], err)
	}

	c.SetReadDeadline(time.Now())
	if err := waitReadable(c); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("past the deadline: %v", err)
	}
	c.SetReadDeadline(time.Time{})

	// Nobody listens on server's port once it is closed: the kernel
	// answers the next datagram with a port unreachable.
	server.Close()
	if _, err := c.Write([]byte("anyone?")); err != nil {
		t.Fatal(err)
	}
	// Only so that a lost answer fails the test instead of hanging it.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := waitReadable(c); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("to a closed port: %v", err)
	}

	c.Close()
	if err := waitReadable(c); !errors.Is(err, net.ErrClosed) {
		t.Errorf("closed: %v", err)
	}
}

// TestRelayTCPBoundsConns opens more connections to a TCP relay on
// 127.0.0.1 than it may relay at once, to an echo server of the test's:
// no more than the bound reach the server at once, and the relay holds
// their descriptors only; a client left waiting (in the listener's
// backlog) is relayed once another one closes; and closing leaves no
// goroutine and no descriptor.
func TestRelayTCPBoundsConns(t *testing.T) {
	const limit, over = 4, 4
	goroutines, fds := runtime.NumGoroutine(), testenv.OpenFiles(t)

	echo := startTCPEcho(t)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The kernel completes every client's handshake into the listener's
	// backlog, relay or not, and keeps what each one sends.
	clients := make([]net.Conn, limit+over)
	for i := range clients {
		c, err := net.Dial("tcp4", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := fmt.Fprintf(c, "from %d\n", i); err != nil {
			t.Fatal(err)
		}
		clients[i] = c
	}
	// What the relay and the echo server open from here: for each relayed
	// connection the relay's connFiles and the server's end.
	relayFDs := testenv.OpenFiles(t)

	ctx, cancel := context.WithCancel(context.Background())
	pub := &Published{cancel: cancel, closers: []io.Closer{l}}
	slots := make(chan struct{}, limit)
	pub.wg.Add(1)
	go pub.relayTCP(ctx, l, echo.addr(), slots)

	for i := range limit {
		hear(t, clients[i], fmt.Sprintf("from %d", i))
	}
	// With every slot taken the relay accepts no more. A relay without the
	// bound would go on to the clients waiting: waiting for that as well
	// makes it fail every time, rather than pass when looked at too early.
	if !eventually(func() bool { return len(slots) == limit || echo.most() > limit }) {
		t.Fatalf("the relay holds %d slots of %d, and %d connections reached the server", len(slots), limit, echo.most())
	}
	if n := echo.most(); n > limit {
		t.Fatalf("%d connections relayed at once, more than the %d allowed", n, limit)
	}
	if n := testenv.OpenFiles(t) - relayFDs; n > limit*(connFiles+1) {
		t.Fatalf("%d descriptors for %d relayed connections, more than %d each", n, limit, connFiles+1)
	}
	// Each client that closes makes room for the one that has waited the
	// longest (the backlog is in order), which gets its echo.
	for i := limit; i < len(clients); i++ {
		clients[i-limit].Close()
		hear(t, clients[i], fmt.Sprintf("from %d", i))
	}
	if n := echo.most(); n > limit {
		t.Errorf("%d connections relayed at once, more than the %d allowed", n, limit)
	}

	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		c.Close()
	}
	echo.close()
	// A goroutine is counted until it has returned, a moment after the
	// WaitGroup let Close go on; the splices' pipes stay in Go's pool after
	// their connections ended, until the collector has been through it
	// twice.
	if !eventually(func() bool {
		runtime.GC()
		return runtime.NumGoroutine() <= goroutines && testenv.OpenFiles(t) <= fds
	}) {
		t.Errorf("left behind: %d goroutines (began with %d), %d open files (began with %d)",
			runtime.NumGoroutine(), goroutines, testenv.OpenFiles(t), fds)
	}
}

// tcpEcho is an echo server on 127.0.0.1 that counts the connections it
// has open at once.
type tcpEcho struct {
	l  net.Listener
	wg sync.WaitGroup

	mu         sync.Mutex
	open, peak int
}

func startTCPEcho(t *testing.T) *tcpEcho {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &tcpEcho{l: l}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			e.mu.Lock()
			e.open++
			e.peak = max(e.peak, e.open)
			e.mu.Unlock()
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				e.serve(c)
			}()
		}
	}()
	t.Cleanup(e.close)
	return e
}

// serve echoes what c sends until it ends, through a buffer of its own
// (no splice, whose pipes would mix with the relay's descriptors). It
// counts c as gone before closing it, so that the relay, which waits for
// that close, never sees a count behind.
func (e *tcpEcho) serve(c net.Conn) {
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			c.Write(buf[:n])
		}
		if err != nil {
			break
		}
	}
	e.mu.Lock()
	e.open--
	e.mu.Unlock()
	c.Close()
}

func (e *tcpEcho) addr() string { return e.l.Addr().String() }

// most is the most connections the server has had open at once.
func (e *tcpEcho) most() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.peak
}

// close stops the server and waits for its goroutines; the connections
// it serves end with their clients'.
func (e *tcpEcho) close() {
	e.l.Close()
	e.wg.Wait()
}

// hear reads a line from c and checks that it is msg.
func hear(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	// Only so that a lost echo fails the test instead of hanging it.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("%q: %v", msg, err)
	}
	if got := strings.TrimSuffix(line, "\n"); got != msg {
		t.Fatalf("%q: the echo is %q", msg, got)
	}
}

// eventually polls cond until it holds and tells whether it did before
// a long while had passed (a hang guard, not a measure).
func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}
