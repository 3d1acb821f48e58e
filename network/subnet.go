package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
)

// defaultPool is where stack picks a stack's /24 when none is asked for.
var defaultPool = netip.MustParsePrefix("10.89.0.0/16")

// lockSubnets takes the lock under which a stack chooses its subnet and
// creates its bridge, and returns its release. The lock is on the state
// root directory itself, so that no lock file is left behind.
func lockSubnets(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("subnet lock: %w", err)
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("subnet lock: %w", err)
	}
	if err := linux.IgnoringEINTR(func() error { return unix.Flock(int(f.Fd()), unix.LOCK_EX) }); err != nil {
		f.Close()
		return nil, fmt.Errorf("subnet lock %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

// usedPrefixes are the destinations of every IPv4 route of every table
// and the networks of every IPv4 address on the host: a stack's subnet
// must overlap none of them.
func usedPrefixes() ([]netip.Prefix, error) {
	routes, err := consistentDump(func() ([]netlink.Route, error) {
		return netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	var used []netip.Prefix
	for _, r := range routes {
		if r.Dst == nil {
			continue // the default route overlaps everything by design
		}
		if p, ok := prefixOf(r.Dst.IP, r.Dst.Mask); ok && p.Bits() > 0 {
			used = append(used, p)
		}
	}
	addrs, err := consistentDump(func() ([]netlink.Addr, error) { return netlink.AddrList(nil, netlink.FAMILY_V4) })
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if p, ok := prefixOf(a.IP, a.Mask); ok {
			used = append(used, p.Masked())
		}
	}
	return used, nil
}

func prefixOf(ip []byte, mask []byte) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Prefix{}, false
	}
	ones := 0
	for _, b := range mask {
		for ; b&0x80 != 0; b <<= 1 {
			ones++
		}
	}
	return netip.PrefixFrom(a.Unmap(), ones).Masked(), true
}

// ErrSubnetTaken is why a subnet asked for cannot be had.
var ErrSubnetTaken = errors.New("overlaps a route or address of the host (another stack's network, for one)")

func checkSubnet(s netip.Prefix, used []netip.Prefix) error {
	if !s.Addr().Is4() {
		return fmt.Errorf("subnet %s: not an IPv4 network", s)
	}
	if s.Bits() > 29 {
		return fmt.Errorf("subnet %s: too small (a /29 at most)", s)
	}
	for _, u := range used {
		if u.Overlaps(s) {
			return fmt.Errorf("subnet %s: %w: %s", s, ErrSubnetTaken, u)
		}
	}
	return nil
}

// freeSubnet is the first /24 of the default pool that overlaps nothing
// used.
func freeSubnet(used []netip.Prefix) (netip.Prefix, error) {
	base := defaultPool.Addr().As4()
	for i := range 256 {
		s := netip.PrefixFrom(netip.AddrFrom4([4]byte{base[0], base[1], byte(i), 0}), 24)
		if checkSubnet(s, used) == nil {
			return s, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("no free /24 left in %s", defaultPool)
}

// Address is the i-th container address of subnet (0 is .2: .0 is the
// network, .1 the gateway).
func Address(subnet netip.Prefix, i int) (netip.Addr, error) {
	a := subnet.Masked().Addr().As4()
	n := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	size := uint32(1) << (32 - subnet.Bits())
	if i < 0 || uint32(i)+3 > size-1 {
		return netip.Addr{}, fmt.Errorf("subnet %s has no room for %d containers", subnet, i+1)
	}
	n += uint32(i) + 2
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), nil
}
