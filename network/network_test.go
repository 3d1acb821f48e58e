package network

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/testenv"
)

// Every test of this package makes devices and rules, so the test binary
// runs itself again in a network namespace of its own (unshare(1) makes
// it; it dies with the binary), and checks at the end that nothing is left
// there. A test binary started with helperEnv set is a container stand-in
// instead: see runHelper.
const (
	inNetnsEnv = "STACK_NETWORK_TEST_NETNS"
	helperEnv  = "STACK_NETWORK_TEST_HELPER"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		runHelper()
		return
	}
	if os.Geteuid() == 0 && os.Getenv(inNetnsEnv) == "" {
		cmd := exec.Command("unshare", append([]string{"--net", "--", os.Args[0]}, os.Args[1:]...)...)
		cmd.Env = append(os.Environ(), inNetnsEnv+"=1")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			os.Exit(exit.ExitCode())
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "run the tests in a network namespace: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(inNetnsEnv) != "" {
		// A new namespace's lo is down; the published ports are reached
		// on 127.0.0.1.
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "bring lo up: %v\n", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if os.Getenv(inNetnsEnv) != "" {
		if left := leftovers(); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "left in the test's network namespace: %s\n", strings.Join(left, ", "))
			code = 1
		}
	}
	os.Exit(code)
}

// leftovers lists every device but lo and every nftables table.
func leftovers() []string {
	var left []string
	links, err := netlink.LinkList()
	if err != nil {
		return []string{"list links: " + err.Error()}
	}
	for _, l := range links {
		if l.Attrs().Name != "lo" {
			left = append(left, "link "+l.Attrs().Name)
		}
	}
	c, err := nftables.New()
	if err != nil {
		return append(left, "nftables: "+err.Error())
	}
	tables, err := c.ListTables()
	if err != nil {
		return append(left, "list tables: "+err.Error())
	}
	for _, t := range tables {
		left = append(left, "table "+t.Name)
	}
	return left
}

func requireNetns(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t)
	if os.Getenv(inNetnsEnv) == "" {
		t.Fatal("not in a network namespace of the test's own")
	}
}

func create(t *testing.T, id string, subnet netip.Prefix) *Network {
	t.Helper()
	n, err := Create(id, t.TempDir(), subnet)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() {
		if err := Remove(id); err != nil {
			t.Errorf("Remove: %v", err)
		}
	})
	return n
}

func TestCreateAndRemove(t *testing.T) {
	requireNetns(t)
	n, err := Create("0000c0de", t.TempDir(), netip.Prefix{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Bridge != "stk0000c0de" || n.Subnet != netip.MustParsePrefix("10.89.0.0/24") ||
		n.Gateway != netip.MustParseAddr("10.89.0.1") {
		t.Errorf("network = %+v", n)
	}
	br, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := netlink.AddrList(br, netlink.FAMILY_V4)
	if err != nil || len(addrs) != 1 || addrs[0].IPNet.String() != "10.89.0.1/24" {
		t.Errorf("bridge addresses = %v, %v; want 10.89.0.1/24", addrs, err)
	}
	if b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(string(b)) != "1" {
		t.Errorf("ip_forward = %q", b)
	}
	c := startContainer(t, n, "10.89.0.2")
	// A second one: Remove deletes the links all at once, and these
	// containers' namespaces live on, so that it must delete their pairs.
	startContainer(t, n, "10.89.0.3")
	if left := leftovers(); len(left) != 4 { // bridge, two host ends, table
		t.Errorf("after Create and AttachInto: %v", left)
	}
	// The container's end is in its namespace, as eth0.
	if got := c.ask(t, "links"); got != "eth0 lo" {
		t.Errorf("the container's links: %q", got)
	}
	// IPv4 alone on eth0, as Docker has it: no link-local address.
	if got := c.ask(t, "ipv6"); got != "disable_ipv6=1" {
		t.Errorf("the container's IPv6: %q", got)
	}
	if err := Remove(n.ID); err != nil {
		t.Fatal(err)
	}
	if left := leftovers(); len(left) > 0 {
		t.Errorf("after Remove: %v", left)
	}
	if err := Remove(n.ID); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestSubnetChoice(t *testing.T) {
	requireNetns(t)
	// A host network on 10.89.0.0/24: the default choice must skip it.
	dummy := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "hostnet0"}}
	if err := netlink.LinkAdd(dummy); err != nil {
		t.Fatal(err)
	}
	defer netlink.LinkDel(dummy)
	if err := netlink.AddrAdd(dummy, &netlink.Addr{IPNet: ipNet(netip.MustParsePrefix("10.89.0.7/24"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := Create("00000001", t.TempDir(), netip.MustParsePrefix("10.89.0.0/25")); !errors.Is(err, ErrSubnetTaken) {
		t.Errorf("Create on the host's subnet: %v, want ErrSubnetTaken", err)
	}
	if left := leftovers(); len(left) != 1 {
		t.Errorf("after a refused Create: %v", left)
	}

	// Stacks coming up at once, sharing the lock dir, get distinct /24s.
	lockDir := t.TempDir()
	var wg sync.WaitGroup
	nets := make([]*Network, 6)
	errs := make([]error, len(nets))
	for i := range nets {
		wg.Go(func() { nets[i], errs[i] = Create(fmt.Sprintf("0000001%d", i), lockDir, netip.Prefix{}) })
	}
	wg.Wait()
	seen := map[netip.Prefix]bool{}
	for i, n := range nets {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		defer Remove(n.ID)
		if seen[n.Subnet] || n.Subnet == netip.MustParsePrefix("10.89.0.0/24") || !defaultPool.Contains(n.Subnet.Addr()) {
			t.Errorf("stack %d got %s (taken: %v)", i, n.Subnet, seen)
		}
		seen[n.Subnet] = true
	}
	// An explicit subnet that another stack has is refused too.
	if _, err := Create("00000002", lockDir, nets[0].Subnet); !errors.Is(err, ErrSubnetTaken) {
		t.Errorf("Create on another stack's subnet: %v, want ErrSubnetTaken", err)
	}
}

func TestAddress(t *testing.T) {
	s := netip.MustParsePrefix("10.89.3.0/24")
	for i, want := range map[int]string{0: "10.89.3.2", 1: "10.89.3.3", 252: "10.89.3.254"} {
		if a, err := Address(s, i); err != nil || a.String() != want {
			t.Errorf("Address(%d) = %v, %v; want %s", i, a, err, want)
		}
	}
	if _, err := Address(s, 253); err == nil {
		t.Error("Address(253) of a /24: no error")
	}
}

// container is a stand-in for a container: a process of this test binary
// in a new network namespace, that configures the interface it is given
// and then serves TCP and UDP echo on port 7, and answers dial requests.
type container struct {
	cmd  *exec.Cmd
	in   *bufio.Writer
	out  *bufio.Scanner
	addr netip.Addr
}

func startContainer(t *testing.T, n *Network, addr string) *container {
	t.Helper()
	return startNetns(t, netip.MustParseAddr(addr), func(a netip.Addr, pid int) error {
		iface, err := n.Interface(a)
		if err != nil {
			return err
		}
		return AttachInto(iface, pid)
	})
}

// startNetns starts a container stand-in whose interface attach gives it.
func startNetns(t *testing.T, addr netip.Addr, attach func(a netip.Addr, pid int) error) *container {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	cmd.Stdin = r
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	c := &container{cmd: cmd, in: bufio.NewWriter(w), out: bufio.NewScanner(stdout), addr: addr}
	t.Cleanup(func() {
		w.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	if err := attach(c.addr, cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if got := c.ask(t, "serve"); got != "ok" {
		t.Fatalf("serve in the container: %s", got)
	}
	return c
}

// ask sends one request line to the container and returns its answer.
func (c *container) ask(t *testing.T, req string) string {
	t.Helper()
	fmt.Fprintln(c.in, req)
	c.in.Flush()
	if !c.out.Scan() {
		t.Fatalf("container: no answer to %q", req)
	}
	return c.out.Text()
}

// runHelper is the container stand-in's side of startContainer.
func runHelper() {
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		verb, arg, _ := strings.Cut(in.Text(), " ")
		switch verb {
		case "serve":
			answer(serveEcho(), "ok")
		case "links":
			var names []string
			links, err := netlink.LinkList()
			for _, l := range links {
				names = append(names, l.Attrs().Name)
			}
			sort.Strings(names)
			answer(err, strings.Join(names, " "))
		case "ipv6":
			// eth0's switch and its IPv6 addresses.
			var words []string
			b, err := os.ReadFile("/proc/sys/net/ipv6/conf/eth0/disable_ipv6")
			words = append(words, "disable_ipv6="+strings.TrimSpace(string(b)))
			l, lerr := netlink.LinkByName("eth0")
			err = errors.Join(err, lerr)
			if lerr == nil {
				addrs, aerr := netlink.AddrList(l, netlink.FAMILY_V6)
				err = errors.Join(err, aerr)
				for _, a := range addrs {
					words = append(words, a.IPNet.String())
				}
			}
			answer(err, strings.Join(words, " "))
		case "dial":
			reply, err := echo("tcp", arg, "hello")
			answer(err, reply)
		default:
			answer(fmt.Errorf("unknown request %q", verb), "")
		}
	}
}

func answer(err error, ok string) {
	if err != nil {
		fmt.Println("error: " + err.Error())
		return
	}
	fmt.Println(ok)
}

// serveEcho answers on TCP port 7 with who sent what ("10.89.0.1 says
// hello": the sender tells a relayed connection from a DNATed one), and on
// UDP port 7 with "echo " and what it got.
func serveEcho() error {
	l, err := net.Listen("tcp4", ":7")
	if err != nil {
		return err
	}
	u, err := net.ListenPacket("udp4", ":7")
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				from, _, _ := net.SplitHostPort(c.RemoteAddr().String())
				fmt.Fprintf(c, "%s says %s", from, line)
			}()
		}
	}()
	go echoUDP(u)
	return nil
}

// echoUDP answers every datagram u gets with "echo " and the datagram,
// until u is closed.
func echoUDP(u net.PacketConn) {
	buf := make([]byte, 65535)
	for {
		n, from, err := u.ReadFrom(buf)
		if err != nil {
			return
		}
		u.WriteTo(append([]byte("echo "), buf[:n]...), from)
	}
}

// echo sends msg to addr and returns the answer without its newline.
func echo(network, addr, msg string) (string, error) {
	c, err := net.DialTimeout(network, addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintln(c, msg); err != nil {
		return "", err
	}
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(string(buf[:n]), "\n"), nil
}

func TestContainersTalkAndStacksAreIsolated(t *testing.T) {
	requireNetns(t)
	a := create(t, "0000000a", netip.Prefix{})
	b := create(t, "0000000b", netip.Prefix{})
	a2, a3 := startContainer(t, a, "10.89.0.2"), startContainer(t, a, "10.89.0.3")
	b2 := startContainer(t, b, "10.89.1.2")
	if got := a2.ask(t, "dial 10.89.0.3:7"); got != "10.89.0.2 says hello" {
		t.Errorf("a2 to a3: %q", got)
	}
	// The host reaches every stack's containers, through their gateways.
	if got, err := echo("tcp", "10.89.1.2:7", "hello"); got != "10.89.1.1 says hello" {
		t.Errorf("host to b2: %q, %v", got, err)
	}
	if got := a3.ask(t, "dial 10.89.1.2:7"); !strings.HasPrefix(got, "error:") {
		t.Errorf("a3 reached b2 of another stack: %q", got)
	}
	if got := b2.ask(t, "dial 10.89.0.2:7"); !strings.HasPrefix(got, "error:") {
		t.Errorf("b2 reached a2 of another stack: %q", got)
	}
}

func TestPublish(t *testing.T) {
	requireNetns(t)
	n := create(t, "0000000c", netip.Prefix{})
	c := startContainer(t, n, "10.89.0.2")
	lo := netip.MustParseAddr("127.0.0.1")
	pub, err := n.Publish([]Port{
		{HostPort: 8080, ContainerPort: 7, Protocol: TCP, Address: c.addr},
		{HostIP: lo, HostPort: 8081, ContainerPort: 7, Protocol: UDP, Address: c.addr},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{"127.0.0.1:8080", "10.89.0.1:8080"} {
		// Relayed by the listener: from the gateway.
		if got, err := echo("tcp", to, "over tcp"); got != "10.89.0.1 says over tcp" {
			t.Errorf("tcp %s: %q, %v", to, got, err)
		}
	}
	if got, err := echo("udp", "127.0.0.1:8081", "over udp"); got != "echo over udp" {
		t.Errorf("udp: %q, %v", got, err)
	}
	// From another machine: a namespace on a link of the host's own,
	// whose connections the DNAT rule sends to the container.
	outside := startNetns(t, netip.MustParseAddr("192.0.2.2"), func(a netip.Addr, pid int) error {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "outside0"}, PeerName: ContainerLink, PeerNamespace: netlink.NsPid(pid)}
		if err := netlink.LinkAdd(veth); err != nil {
			return err
		}
		t.Cleanup(func() { netlink.LinkDel(veth) })
		if err := netlink.AddrAdd(veth, &netlink.Addr{IPNet: ipNet(netip.MustParsePrefix("192.0.2.1/24"))}); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(veth); err != nil {
			return err
		}
		// The far end, as AttachInto would leave it: up, addressed,
		// routed through 192.0.2.1.
		fd, err := socketIn(pid, func() error { return nil })
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		up := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
		msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
		msg.Flags, msg.Change = unix.IFF_UP, unix.IFF_UP
		up.AddData(msg)
		up.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(ContainerLink)))
		if errs, err := requests(fd, up); err != nil || errs[0] != nil {
			return fmt.Errorf("set %s up: %v, %v", ContainerLink, err, errs)
		}
		return configure(fd, &Interface{Address: netip.PrefixFrom(a, 24), Gateway: netip.MustParseAddr("192.0.2.1")})
	})
	if got := outside.ask(t, "dial 192.0.2.1:8080"); got != "192.0.2.2 says hello" {
		t.Errorf("from outside to 192.0.2.1:8080: %q", got)
	}
	// And out: the container reaches the other machine through NAT, as
	// the host's address on that link.
	if got := c.ask(t, "dial 192.0.2.2:7"); got != "192.0.2.1 says hello" {
		t.Errorf("from the container to the outside: %q", got)
	}
	// A taken port fails, naming it, and leaves no listener bound.
	_, err = n.Publish([]Port{
		{HostPort: 8082, ContainerPort: 7, Protocol: TCP, Address: c.addr},
		{HostPort: 8080, ContainerPort: 7, Protocol: TCP, Address: c.addr},
	})
	if err == nil || !strings.Contains(err.Error(), "0.0.0.0:8080/tcp") || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("publishing a taken port: %v", err)
	}
	if l, err := net.Listen("tcp4", ":8082"); err != nil {
		t.Errorf("port 8082 still bound after the failed Publish: %v", err)
	} else {
		l.Close()
	}
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := echo("tcp", "127.0.0.1:8080", "closed"); err == nil {
		t.Error("port 8080 still answers after Close")
	}
}

func TestHostsFile(t *testing.T) {
	hosts := []Host{
		{Address: netip.MustParseAddr("10.89.0.2"), Names: []string{"db", "db.demo"}},
		{Address: netip.MustParseAddr("10.89.0.3"), Names: []string{"web", "web.demo"}},
	}
	got := string(HostsFile(hosts, "frontend", netip.MustParseAddr("10.89.0.3")))
	want := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"10.89.0.2\tdb db.demo\n10.89.0.3\tweb web.demo frontend\n"
	if got != want {
		t.Errorf("HostsFile =\n%s\nwant\n%s", got, want)
	}
	got = string(HostsFile(hosts, "solo", netip.Addr{}))
	if !strings.HasPrefix(got, "127.0.0.1\tlocalhost solo\n") {
		t.Errorf("HostsFile without an address =\n%s", got)
	}
}

func TestFilterResolvConf(t *testing.T) {
	in := "# generated\nnameserver 127.0.0.53\nnameserver 192.0.2.1\nnameserver ::1\nsearch example.com\noptions edns0\n"
	out, n := filterResolvConf([]byte(in))
	if want := "nameserver 192.0.2.1\nsearch example.com\noptions edns0\n"; string(out) != want || n != 1 {
		t.Errorf("filterResolvConf = %q, %d; want %q, 1", out, n, want)
	}
}
