package network

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
)

// Protocol is "tcp" or "udp".
type Protocol string

const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
)

// Port is one published port: what arrives at HostIP:HostPort goes to
// Address:ContainerPort.
type Port struct {
	// HostIP is unspecified (0.0.0.0) for every address of the host.
	HostIP        netip.Addr `json:"host_ip"`
	HostPort      uint16     `json:"host_port"`
	ContainerPort uint16     `json:"container_port"`
	Protocol      Protocol   `json:"protocol"`
	// Address is the container's.
	Address netip.Addr `json:"-"`
}

func (p Port) String() string {
	return fmt.Sprintf("%s/%s", p.hostAddr(), p.Protocol)
}

func (p Port) hostAddr() string {
	ip := p.HostIP
	if !ip.IsValid() {
		ip = netip.IPv4Unspecified()
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(int(p.HostPort)))
}

func (p Port) containerAddr() string {
	return net.JoinHostPort(p.Address.String(), strconv.Itoa(int(p.ContainerPort)))
}

// PortError is why a port could not be published.
type PortError struct {
	Port Port
	Err  error
}

func (e *PortError) Error() string { return fmt.Sprintf("publish %s: %v", e.Port, e.Err) }
func (e *PortError) Unwrap() error { return e.Err }

// Published is the set of listeners of a stack's published ports.
type Published struct {
	cancel  context.CancelFunc
	closers []io.Closer
	wg      sync.WaitGroup
}

// Publish binds every port on the host, then adds their DNAT rules, and
// relays what the listeners accept to the containers until Close. A port
// that cannot be bound (taken) fails it with the port in the error, and
// nothing of it is left.
func (n *Network) Publish(ports []Port) (_ *Published, err error) {
	// The relays' connections and flows are bounded by the descriptors
	// the process may have (limits.go).
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return nil, fmt.Errorf("publish: get the descriptor limit: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pub := &Published{cancel: cancel}
	defer func() {
		if err != nil {
			pub.Close()
		}
	}()
	var tcp []net.Listener
	var udp []*net.UDPConn
	for _, p := range ports {
		switch p.Protocol {
		case TCP:
			l, err := net.Listen("tcp4", p.hostAddr())
			if err != nil {
				return nil, &PortError{Port: p, Err: err}
			}
			pub.closers = append(pub.closers, l)
			tcp = append(tcp, l)
		case UDP:
			a, err := net.ResolveUDPAddr("udp4", p.hostAddr())
			if err != nil {
				return nil, fmt.Errorf("publish %s: %w", p, err)
			}
			l, err := net.ListenUDP("udp4", a)
			if err != nil {
				return nil, &PortError{Port: p, Err: err}
			}
			pub.closers = append(pub.closers, l)
			udp = append(udp, l)
		default:
			return nil, fmt.Errorf("publish %s: unknown protocol %q", p, p.Protocol)
		}
	}
	if err := n.addDNAT(ports); err != nil {
		return nil, err
	}
	conns, flows := relayLimits(rl.Cur, len(tcp), len(udp))
	ti, ui := 0, 0
	for _, p := range ports {
		pub.wg.Add(1)
		if p.Protocol == TCP {
			go pub.relayTCP(ctx, tcp[ti], p.containerAddr(), make(chan struct{}, conns))
			ti++
		} else {
			go pub.relayUDP(ctx, udp[ui], p.containerAddr(), newFlowTable(flows))
			ui++
		}
	}
	return pub, nil
}

// Close closes every listener and the connections they relay, and waits
// for their goroutines. The DNAT rules go with the table (Remove).
func (pub *Published) Close() error {
	pub.cancel()
	var errs []error
	for _, c := range pub.closers {
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	pub.wg.Wait()
	return errors.Join(errs...)
}

// maxConns is the most connections one published TCP port relays at
// once. Only the host's own processes and the stack's containers come
// through here (other machines' connections are DNATed by the kernel),
// and what a stack's demo or development brings stays far below: a
// browser opens 6 connections to a host, a service's database pool some
// 10 to 100, a load generator 50 (hey) to a few hundred (wrk -c, ab -c)
// unless told more. At connFiles each, 1024 connections are 6144
// descriptors a port, well inside the half of the usual limits (524288
// or more) that the relays share. Without a bound, anything that kept
// connections open took descriptors until the supervisor, which the
// whole stack shares, had none left.
const maxConns = 1024

// relayTCP carries each connection l accepts to the container at to,
// until l is closed; then it closes the connections and waits for their
// goroutines. Each connection holds one of slots while it lasts.
//
// With every slot taken, the relay stops accepting rather than close a
// live connection: a new client's connection is established by the
// kernel and waits in the listener's backlog (up to somaxconn, 4096 by
// default, beyond which the kernel drops its SYNs and it retries), and it
// is relayed once another connection ends. Unlike a UDP flow, which a
// client gets back with its next datagram, a closed connection is lost
// to its client (a reset request, a dropped stream), and the clients
// here are few and known. docker-proxy has no bound: it accepts until
// Accept fails, and then stops relaying the port altogether; but it is a
// process per port, so only that port suffers.
func (pub *Published) relayTCP(ctx context.Context, l net.Listener, to string, slots chan struct{}) {
	defer pub.wg.Done()
	var conns sync.WaitGroup
	defer conns.Wait()
	var d net.Dialer
	for {
		// The slot is taken before Accept, so that at the cap the next
		// client stays in the backlog instead of holding descriptors here.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		in, err := l.Accept()
		if err != nil {
			<-slots
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors for the rest of the supervisor, say:
			// wait a moment rather than spin.
			time.Sleep(50 * time.Millisecond)
			continue
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			// Given back once both sockets are closed (the deferred
			// closes below run first).
			defer func() { <-slots }()
			defer in.Close()
			out, err := d.DialContext(ctx, "tcp4", to)
			if err != nil {
				return // the client sees its connection closed, as with docker-proxy
			}
			defer out.Close()
			stop := context.AfterFunc(ctx, func() { in.Close(); out.Close() })
			defer stop()
			splice(in.(*net.TCPConn), out.(*net.TCPConn))
		}()
	}
}

// splice copies both ways until both directions ended, passing on each
// half-close (a client that shuts down its writing still gets the reply).
func splice(a, b *net.TCPConn) {
	done := make(chan struct{})
	go func() {
		io.Copy(b, a)
		b.CloseWrite()
		close(done)
	}()
	io.Copy(a, b)
	a.CloseWrite()
	<-done
}

// udpIdle is how long a UDP client's relay lives without a datagram,
// conntrack's default for unreplied UDP flows.
const udpIdle = 30 * time.Second

// replyBufs holds the buffers that replies are read into, each big enough
// for any datagram. A flow takes one only once a reply is there to read:
// it waits most of its life, and a buffer of its own cost 64 KiB a flow
// (128 KiB, on its goroutine's stack), 128 MiB for a port's maxFlows.
var replyBufs = sync.Pool{New: func() any { b := make([]byte, 65535); return &b }}

// relayUDP carries what l receives to the container at to, on one socket
// per client address (flow, kept in flows), and the replies back, until
// l is closed; then it closes every flow and waits for their goroutines.
func (pub *Published) relayUDP(ctx context.Context, l *net.UDPConn, to string, flows *flowTable) {
	defer pub.wg.Done()
	var wg sync.WaitGroup
	defer func() {
		flows.close()
		wg.Wait()
	}()
	buf := make([]byte, 65535)
	for {
		nr, from, err := l.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		f := flows.get(from)
		if f == nil {
			c, err := net.Dial("udp4", to)
			if err != nil {
				continue
			}
			f = flows.add(from, c.(*net.UDPConn))
			wg.Add(1)
			go func() {
				defer wg.Done()
				relayReplies(l, flows, f)
			}()
		}
		f.conn.Write(buf[:nr])
	}
}

// relayReplies sends what the container answers on f back to f's client
// through l, until f has had no reply for udpIdle or is closed (evicted,
// or the relay ends). It takes f out of flows before closing its socket,
// so that the relay never picks a closed flow for a client.
func relayReplies(l *net.UDPConn, flows *flowTable, f *flow) {
	defer f.conn.Close()
	defer flows.remove(f)
	for {
		f.conn.SetReadDeadline(time.Now().Add(udpIdle))
		if err := waitReadable(f.conn); err != nil {
			return
		}
		b := replyBufs.Get().(*[]byte)
		n, err := f.conn.Read(*b)
		if err == nil {
			flows.used(f)
			l.WriteToUDPAddrPort((*b)[:n], f.client)
		}
		replyBufs.Put(b)
		if err != nil {
			return
		}
	}
}

// waitReadable waits, without a buffer, until c has a datagram to read
// or an error to return (ECONNREFUSED after a datagram the container's
// kernel refused, which ends the flow as a failed Read did), or its read
// deadline passes, or it is closed.
func waitReadable(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var peek error
	err = rc.Read(func(fd uintptr) bool {
		// MSG_PEEK leaves the datagram for the Read that follows; with no
		// buffer, it reads nothing. EAGAIN: nothing yet, the poller waits.
		peek = linux.IgnoringEINTR(func() error {
			_, _, err := unix.Recvfrom(int(fd), nil, unix.MSG_PEEK|unix.MSG_DONTWAIT)
			return err
		})
		return !errors.Is(peek, unix.EAGAIN)
	})
	if err != nil {
		return err
	}
	return peek
}
