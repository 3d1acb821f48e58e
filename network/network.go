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
	"strings"

	"github.com/vishvananda/netlink"
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
}

// ID is the network ID of the stack whose state lives in stateDir.
func ID(stateDir string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(stateDir)))
	return hex.EncodeToString(sum[:4])
}

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
	n := &Network{ID: id, Bridge: devicePrefix + id, Subnet: subnet, Gateway: subnet.Addr().Next()}
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
func Remove(id string) error {
	var errs []error
	if err := deleteTable(id); err != nil {
		errs = append(errs, err)
	}
	links, err := netlink.LinkList()
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list links: %w", err))...)
	}
	prefix := devicePrefix + id
	for _, l := range links {
		name := l.Attrs().Name
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		// Deleting one end of a veth pair deletes the other: a link
		// listed may be gone by the time it is deleted.
		if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("delete link %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// Interface is what a container's end of a veth pair becomes inside its
// network namespace.
type Interface struct {
	// Link is the name of the container's end before it is renamed eth0.
	Link    string
	Address netip.Prefix
	Gateway netip.Addr
}

// Attach makes the veth pair of the container with address addr: its host
// end on the bridge, its other end ready for MoveLink. A pair left by an
// earlier start of the same container is replaced.
func (n *Network) Attach(addr netip.Addr) (*Interface, error) {
	if !n.Subnet.Contains(addr) {
		return nil, fmt.Errorf("attach %s: not in subnet %s", addr, n.Subnet)
	}
	octet := addr.As4()[3]
	host := fmt.Sprintf("%s%sv%d", devicePrefix, n.ID, octet)
	peer := fmt.Sprintf("%s%sp%d", devicePrefix, n.ID, octet)
	for _, name := range []string{host, peer} {
		// The previous pair goes with its container's namespace, but the
		// kernel tears namespaces down in the background.
		if l, err := netlink.LinkByName(name); err == nil {
			if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
				return nil, fmt.Errorf("attach %s: delete old link %s: %w", addr, name, err)
			}
		}
	}
	br, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		return nil, fmt.Errorf("attach %s: bridge %s: %w", addr, n.Bridge, err)
	}
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: host, MasterIndex: br.Attrs().Index},
		PeerName:         peer,
		PeerHardwareAddr: macOf(addr),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("attach %s: create veth %s: %w", addr, host, err)
	}
	if err := netlink.LinkSetUp(veth); err != nil {
		netlink.LinkDel(veth)
		return nil, fmt.Errorf("attach %s: set %s up: %w", addr, host, err)
	}
	return &Interface{Link: peer, Address: netip.PrefixFrom(addr, n.Subnet.Bits()), Gateway: n.Gateway}, nil
}

// Detach deletes the veth pair of a container whose start failed before
// its namespace took the other end; a missing pair is not an error.
func (n *Network) Detach(iface *Interface) error {
	l, err := netlink.LinkByName(iface.Link)
	if err != nil {
		return nil
	}
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete link %s: %w", iface.Link, err)
	}
	return nil
}

// MoveLink moves the link named name into the network namespace of pid.
func MoveLink(name string, pid int) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("move link %s: %w", name, err)
	}
	if err := netlink.LinkSetNsPid(l, pid); err != nil {
		return fmt.Errorf("move link %s into the namespace of pid %d: %w", name, pid, err)
	}
	return nil
}

// ContainerLink is the name the container sees its interface by.
const ContainerLink = "eth0"

// ConfigureInside makes iface the container's eth0, with its address and
// a default route through the gateway. It runs in the container's network
// namespace, after MoveLink.
func ConfigureInside(iface *Interface) error {
	l, err := netlink.LinkByName(iface.Link)
	if err != nil {
		return fmt.Errorf("configure %s: %w", iface.Link, err)
	}
	if err := netlink.LinkSetName(l, ContainerLink); err != nil {
		return fmt.Errorf("rename %s to %s: %w", iface.Link, ContainerLink, err)
	}
	if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: ipNet(iface.Address)}); err != nil {
		return fmt.Errorf("%s: add address %s: %w", ContainerLink, iface.Address, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("%s: set up: %w", ContainerLink, err)
	}
	gw := net.IP(iface.Gateway.AsSlice())
	if err := netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw}); err != nil {
		return fmt.Errorf("%s: default route via %s: %w", ContainerLink, gw, err)
	}
	return nil
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
