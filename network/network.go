package network

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// devicePrefix starts the name of every device of every stack.
const devicePrefix = "stk"

// Network is a stack's network as it exists on the host. Its fields are
// what the state file keeps, so that Remove can find everything again.
type Network struct {
	// ID is 8 hex digits; every device's name starts with "stk" + ID.
	ID      string       `json:"id"`
	Bridge  string       `json:"bridge"`
	Subnet  netip.Prefix `json:"subnet"`
	Gateway netip.Addr   `json:"gateway"`
	// bridgeIndex is the bridge's ifindex when Create made it, so that
	// no attach has to look it up again; 0 when unknown.
	bridgeIndex int
}

// ID is the network ID of the stack whose state lives in stateDir.
func ID(stateDir string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(stateDir)))
	return hex.EncodeToString(sum[:4])
}

// BridgeName is the name of the bridge of the network with this ID.
func BridgeName(id string) string { return devicePrefix + id }

// Create makes the stack's network: subnet (subnet when valid, else a free
// /24 of 10.89.0.0/16), bridge and nftables table. lockDir holds the lock
// that serializes the choice of subnets between stacks. On failure nothing
// of it is left.
func Create(id, lockDir string, subnet netip.Prefix) (_ *Network, err error) {
	unlock, err := lockSubnets(lockDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// A bridge or table left by a crashed run of the same stack would
	// look like a conflict (its route) or fail the creation.
	if err := Remove(id); err != nil {
		return nil, err
	}
	used, err := usedPrefixes()
	if err != nil {
		return nil, err
	}
	if subnet.IsValid() {
		subnet = subnet.Masked()
		if err := checkSubnet(subnet, used); err != nil {
			return nil, err
		}
	} else if subnet, err = freeSubnet(used); err != nil {
		return nil, err
	}
	n := &Network{ID: id, Bridge: BridgeName(id), Subnet: subnet, Gateway: subnet.Addr().Next()}
	defer func() {
		if err != nil {
			if rerr := Remove(id); rerr != nil {
				err = fmt.Errorf("%w (and then: %w)", err, rerr)
			}
		}
	}()
	if err := n.makeBridge(); err != nil {
		return nil, err
	}
	if err := enableForwarding(); err != nil {
		return nil, err
	}
	if err := n.addTable(); err != nil {
		return nil, err
	}
	return n, nil
}

func (n *Network) makeBridge() error {
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{
		Name: n.Bridge,
		// Fixed, or the bridge takes the lowest MAC of its ports and
		// the containers' neighbour entries of the gateway go stale
		// whenever a container comes or goes.
		HardwareAddr: macOf(n.Gateway),
	}}
	if err := netlink.LinkAdd(br); err != nil {
		return fmt.Errorf("create bridge %s: %w", n.Bridge, err)
	}
	n.bridgeIndex = br.Attrs().Index
	addr := &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(n.Gateway, n.Subnet.Bits()))}
	if err := netlink.AddrAdd(br, addr); err != nil {
		return fmt.Errorf("bridge %s: add address %s: %w", n.Bridge, addr.IPNet, err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return fmt.Errorf("bridge %s: set up: %w", n.Bridge, err)
	}
	return nil
}

// enableForwarding turns on IPv4 forwarding, as Docker does: without it
// nothing crosses from the bridge to the host's other networks. It is
// never turned off again, since other programs may rely on it by then.
func enableForwarding() error {
	const p = "/proc/sys/net/ipv4/ip_forward"
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	if strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enable IPv4 forwarding: write %s: %w", p, err)
	}
	return nil
}

// Remove deletes the nftables table and every device of the stack with
// the given ID; what is already gone is not an error.
//
// All of them go at once. The kernel ends each link's deletion waiting
// for every pending RCU callback (rcu_barrier), and a bridge's twice more
// before (its multicast state and its port), each tens of milliseconds
// on a small VM, and the table's deletion waits for a flush of work: one
// after another, a network of ten containers took 130 to 220 ms to
// remove (the bridge, and the veth pairs whose containers' namespaces
// the kernel had not torn down yet, each alone), 80 to 120 ms at once.
func Remove(id string) error {
	links, err := consistentDump(netlink.LinkList)
	if err != nil {
		return errors.Join(fmt.Errorf("list links: %w", err), deleteTable(id))
	}
	prefix := devicePrefix + id
	var mine []netlink.Link
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, prefix) {
			mine = append(mine, l)
		}
	}
	errs := make([]error, 1+len(mine))
	var g errgroup.Group
	g.SetLimit(maxParallelDeletes)
	g.Go(func() error {
		errs[0] = deleteTable(id)
		return nil
	})
	for i, l := range mine {
		g.Go(func() error {
			// Deleting one end of a veth pair deletes the other, and a
			// container's namespace takes its pair when it goes: a link
			// listed may be gone by the time it is deleted.
			if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
				errs[1+i] = fmt.Errorf("delete link %s: %w", l.Attrs().Name, err)
			}
			return nil
		})
	}
	g.Wait()
	return errors.Join(errs...)
}

// maxParallelDeletes bounds the links Remove deletes at once, each on a
// netlink socket and a thread of its own while it waits.
const maxParallelDeletes = 16

// Interface is a container's place on the network: the veth pair that
// AttachInto makes for one start of it, and what its end becomes inside
// its network namespace.
type Interface struct {
	// Bridge is the stack's bridge, which HostLink joins.
	Bridge string
	// bridgeIndex is Bridge's ifindex, 0 when unknown.
	bridgeIndex int
	HostLink    string
	Address     netip.Prefix
	Gateway     netip.Addr
}

// Interface is the interface of the container with address addr. A pair
// left by an earlier start of the same container is deleted when
// AttachInto finds it.
func (n *Network) Interface(addr netip.Addr) (*Interface, error) {
	if !n.Subnet.Contains(addr) {
		return nil, fmt.Errorf("interface for %s: not in subnet %s", addr, n.Subnet)
	}
	octet := addr.As4()[3]
	iface := &Interface{
		Bridge:      n.Bridge,
		bridgeIndex: n.bridgeIndex,
		HostLink:    fmt.Sprintf("%s%sv%d", devicePrefix, n.ID, octet),
		Address:     netip.PrefixFrom(addr, n.Subnet.Bits()),
		Gateway:     n.Gateway,
	}
	return iface, nil
}

// AttachInto makes iface's veth pair: the host end on the bridge, up; the
// container's end, eth0, made right inside the network namespace of pid,
// up, with its address and a default route through the gateway, and
// without IPv6 (disableIPv6). The program never runs without it.
//
// Each request waits its turn for the kernel's lock of the network's
// configuration, which a start of many containers at once queues on, so
// there are few, and none that waits while it holds the lock. The
// container's end is made right in its namespace rather than moved there,
// which skips a namespace change of the device (a wait for RCU readers
// per move), and its final name is free there, so no rename follows.
// Both ends are made with the one queue each that a veth keeps anyway:
// one made with a queue per CPU, the default, is cut down to one right
// away, and the cut waits for RCU readers, lock held, for each end. The
// creation is one RTM_NEWLINK that also names the master (whose index
// the Network knows), where the netlink package's LinkAdd sends the
// master as a request of its own and looks the new link up again; the
// host end's up goes in the same write, and eth0's address, up and route
// in one write of their own.
// The pair of an earlier start of the container, which the kernel may
// not have torn down with its namespace yet, is looked for only when the
// creation finds its name taken.
func AttachInto(iface *Interface, pid int) error {
	fd, err := socketIn(pid, disableIPv6)
	if err != nil {
		return fmt.Errorf("attach %s: %w", iface.Address.Addr(), err)
	}
	defer unix.Close(fd)
	if err := makeVeth(iface, pid); err != nil {
		return err
	}
	return configure(fd, iface)
}

// makeVeth makes iface's veth pair, eth0 in the namespace of pid.
func makeVeth(iface *Interface, pid int) error {
	bridge := iface.bridgeIndex
	if bridge == 0 {
		br, err := netlink.LinkByName(iface.Bridge)
		if err != nil {
			return fmt.Errorf("attach %s: bridge %s: %w", iface.Address.Addr(), iface.Bridge, err)
		}
		bridge = br.Attrs().Index
	}
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(iface.HostLink)))
	req.AddData(nl.NewRtAttr(unix.IFLA_MASTER, nl.Uint32Attr(uint32(bridge))))
	req.AddData(nl.NewRtAttr(unix.IFLA_NUM_TX_QUEUES, nl.Uint32Attr(1)))
	req.AddData(nl.NewRtAttr(unix.IFLA_NUM_RX_QUEUES, nl.Uint32Attr(1)))
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("veth"))
	peer := info.AddRtAttr(nl.IFLA_INFO_DATA, nil).AddRtAttr(nl.VETH_INFO_PEER, nil)
	nl.NewIfInfomsgChild(peer, unix.AF_UNSPEC)
	peer.AddRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(ContainerLink))
	peer.AddRtAttr(unix.IFLA_ADDRESS, []byte(macOf(iface.Address.Addr())))
	peer.AddRtAttr(unix.IFLA_NET_NS_PID, nl.Uint32Attr(uint32(pid)))
	peer.AddRtAttr(unix.IFLA_NUM_TX_QUEUES, nl.Uint32Attr(1))
	peer.AddRtAttr(unix.IFLA_NUM_RX_QUEUES, nl.Uint32Attr(1))
	req.AddData(info)
	// The host end is a port of the bridge and nothing else: it gets no
	// IPv6 link-local address, which would cost the kernel the address,
	// its routes and its duplicate check, lock held, as eth0 comes up.
	// The creation cannot say so (the end has no IPv6 state before it
	// is registered): the change follows in the same write, and sets
	// the end up.
	up := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Flags, msg.Change = unix.IFF_UP, unix.IFF_UP
	up.AddData(msg)
	up.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(iface.HostLink)))
	spec := nl.NewRtAttr(unix.IFLA_AF_SPEC, nil)
	spec.AddRtAttr(unix.AF_INET6, nil).AddRtAttr(unix.IFLA_INET6_ADDR_GEN_MODE, []byte{nl.IN6_ADDR_GEN_MODE_NONE})
	up.AddData(spec)
	fd, err := rtnlSocket()
	if err != nil {
		return fmt.Errorf("attach %s: netlink socket: %w", iface.Address.Addr(), err)
	}
	defer unix.Close(fd)
	errs, err := requests(fd, req, up)
	if err == nil && errors.Is(errs[0], unix.EEXIST) {
		// The previous pair goes with its container's namespace, but
		// the kernel tears namespaces down in the background.
		if err = deleteLink(iface.HostLink); err == nil {
			errs, err = requests(fd, req, up)
		}
	}
	if err == nil {
		err = errs[0]
	}
	if err != nil {
		return fmt.Errorf("attach %s: create veth %s into the namespace of pid %d: %w", iface.Address.Addr(), iface.HostLink, pid, err)
	}
	if errs[1] != nil {
		// A container whose start fails has its pair deleted.
		return fmt.Errorf("attach %s: set veth %s up: %w", iface.Address.Addr(), iface.HostLink, errs[1])
	}
	return nil
}

// configure gives eth0, through fd, a netlink socket in its namespace,
// its address, up and the default route, all in one write: the kernel
// takes them in order. (The creation cannot set it up: a veth end does
// not open before its peer is registered, which comes after.)
func configure(fd int, iface *Interface) error {
	index, err := linkIndex(fd, ContainerLink)
	if err != nil {
		return fmt.Errorf("configure %s: %w", ContainerLink, err)
	}
	addr := nl.NewNetlinkRequest(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	amsg := nl.NewIfAddrmsg(unix.AF_INET)
	amsg.Prefixlen, amsg.Index = uint8(iface.Address.Bits()), uint32(index)
	addr.AddData(amsg)
	local := iface.Address.Addr().AsSlice()
	addr.AddData(nl.NewRtAttr(unix.IFA_LOCAL, local))
	addr.AddData(nl.NewRtAttr(unix.IFA_ADDRESS, local))
	addr.AddData(nl.NewRtAttr(unix.IFA_BROADCAST, broadcast(iface.Address)))
	up := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	umsg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	umsg.Index, umsg.Flags, umsg.Change = int32(index), unix.IFF_UP, unix.IFF_UP
	up.AddData(umsg)
	route := nl.NewNetlinkRequest(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	rmsg := nl.NewRtMsg()
	rmsg.Family = unix.AF_INET
	route.AddData(rmsg)
	route.AddData(nl.NewRtAttr(unix.RTA_GATEWAY, iface.Gateway.AsSlice()))
	route.AddData(nl.NewRtAttr(unix.RTA_OIF, nl.Uint32Attr(uint32(index))))
	errs, err := requests(fd, addr, up, route)
	if err != nil {
		return fmt.Errorf("configure %s: %w", ContainerLink, err)
	}
	if errs[0] != nil {
		return fmt.Errorf("%s: add address %s: %w", ContainerLink, iface.Address, errs[0])
	}
	if errs[1] != nil {
		return fmt.Errorf("%s: set up: %w", ContainerLink, errs[1])
	}
	if errs[2] != nil {
		return fmt.Errorf("%s: default route via %s: %w", ContainerLink, iface.Gateway, errs[2])
	}
	return nil
}

// broadcast is the broadcast address of p, as `ip addr add ... brd +`
// and the netlink package give it.
func broadcast(p netip.Prefix) []byte {
	b := p.Addr().As4()
	mask := net.CIDRMask(p.Bits(), 32)
	for i := range b {
		b[i] |= ^mask[i]
	}
	return b[:]
}

// Detach deletes the veth pair of a container whose start failed; the
// pair may be gone already with the container's namespace.
func Detach(iface *Interface) error { return deleteLink(iface.HostLink) }

// deleteLink deletes the link named name; a missing one is not an error.
func deleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	var missing netlink.LinkNotFoundError
	if errors.As(err, &missing) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up link %s: %w", name, err)
	}
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// ContainerLink is the name the container sees its interface by.
const ContainerLink = "eth0"

// disableIPv6 turns IPv6 off for the devices made from now on in the
// network namespace of the calling thread, eth0 among them, as Docker
// does on a network without IPv6: the stack's network is IPv4 alone, and
// an eth0 left to IPv6 would take a link-local address, check it for
// duplicates and report its multicast groups on the bridge, all of it
// work of the kernel's in the background while the containers start, for
// an address nothing uses. It is the namespace's default that is written,
// before eth0 exists: eth0 is made with it, and the write of the
// default, unlike that of a device's own, does not take the kernel's
// lock of the network's configuration. The loopback, there already,
// keeps ::1. /proc/sys/net shows the namespace of the thread that opens
// it. A kernel without IPv6 has nothing to turn off.
func disableIPv6() error {
	p := "/proc/sys/net/ipv6/conf/default/disable_ipv6"
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err == nil {
		_, err = unix.Write(fd, []byte("1\n"))
		unix.Close(fd)
	}
	if err != nil {
		return fmt.Errorf("disable IPv6: write %s: %w", p, err)
	}
	return nil
}

// socketIn returns a netlink socket that lives in the network namespace
// of pid, after running there, first, what needs a thread in the
// namespace (inside): a socket stays in the namespace it was made in, so
// only its creation needs a thread in there. That thread is locked while
// it is, and given back as it was found (netlink's NewHandleAt would
// unlock a thread it could not bring back); should the kernel refuse to
// undo its own setns, the thread is parked for the rest of the process's
// life instead of running other goroutines in the container's namespace,
// and instead of ending, which would fire the parent-death signal of a
// container's init that it may have forked.
func socketIn(pid int, inside func() error) (int, error) {
	theirs := fmt.Sprintf("/proc/%d/ns/net", pid)
	target, err := unix.Open(theirs, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", theirs, err)
	}
	defer unix.Close(target)
	type result struct {
		fd  int
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		own, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{-1, fmt.Errorf("open the own network namespace: %w", err)}
			return
		}
		defer unix.Close(own)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{-1, fmt.Errorf("enter %s: %w", theirs, err)}
			return
		}
		fd := -1
		ferr := inside()
		if ferr == nil {
			if fd, ferr = rtnlSocket(); ferr != nil {
				ferr = fmt.Errorf("netlink socket: %w", ferr)
			}
		}
		if err := unix.Setns(own, unix.CLONE_NEWNET); err != nil {
			if fd >= 0 {
				unix.Close(fd)
			}
			done <- result{-1, fmt.Errorf("leave %s: %w", theirs, err)}
			select {}
		}
		runtime.UnlockOSThread()
		if ferr != nil {
			ferr = fmt.Errorf("in %s: %w", theirs, ferr)
		}
		done <- result{fd, ferr}
	}()
	r := <-done
	return r.fd, r.err
}

// macOf is the locally administered MAC Docker also derives from an
// address: 02:42 and the four octets.
func macOf(a netip.Addr) net.HardwareAddr {
	b := a.As4()
	return net.HardwareAddr{0x02, 0x42, b[0], b[1], b[2], b[3]}
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), 32)}
}
