package network

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// tableName is the name of a stack's nftables table.
func tableName(id string) string { return "stack_" + id }

func table(id string) *nftables.Table {
	return &nftables.Table{Name: tableName(id), Family: nftables.TableFamilyIPv4}
}

// deleteTable removes a stack's table with all its chains and rules; a
// table that does not exist is not an error.
func deleteTable(id string) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return fmt.Errorf("nftables: list tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == tableName(id) {
			c.DelTable(t)
			if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("nftables: delete table %s: %w", t.Name, err)
			}
		}
	}
	return nil
}

// addTable creates the stack's table in one transaction:
//
//	postrouting (nat):   ip saddr SUBNET oifname != BRIDGE masquerade
//	forward (filter):    iifname BRIDGE oifname "stk*" oifname != BRIDGE drop
//	                     oifname BRIDGE iifname "stk*" iifname != BRIDGE drop
//	prerouting (nat):    the published ports' DNAT rules (Publish)
func (n *Network) addTable() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	t := c.AddTable(table(n.ID))
	post := c.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
	c.AddChain(&nftables.Chain{Name: "prerouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest})
	accept := nftables.ChainPolicyAccept
	fwd := c.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})

	net := n.Subnet.Addr().As4()
	mask := netmask(n.Subnet.Bits())
	c.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask[:], Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: net[:]},
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname(n.Bridge)},
		&expr.Masq{},
	}})
	// Containers of one stack reach each other on the bridge itself;
	// what crosses from one stack's bridge to another's is routed, and
	// dropped here.
	for _, dir := range [][2]expr.MetaKey{{expr.MetaKeyIIFNAME, expr.MetaKeyOIFNAME}, {expr.MetaKeyOIFNAME, expr.MetaKeyIIFNAME}} {
		c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: []expr.Any{
			&expr.Meta{Key: dir[0], Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(n.Bridge)},
			&expr.Meta{Key: dir[1], Register: 1},
			// Fewer bytes than IFNAMSIZ: a prefix match, nft's "stk*".
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte(devicePrefix)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname(n.Bridge)},
			&expr.Verdict{Kind: expr.VerdictDrop},
		}})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: create table %s: %w", tableName(n.ID), err)
	}
	return nil
}

// addDNAT adds the prerouting rules that send what arrives from outside
// for the published ports to the container:
//
//	iifname != BRIDGE fib daddr type local [ip daddr HOST_IP] PROTO dport HOST_PORT dnat to ADDR:PORT
//
// Traffic from the stack's own bridge is left to the listeners, whose
// relayed connections come back from the gateway like any other.
func (n *Network) addDNAT(ports []Port) error {
	if len(ports) == 0 {
		return nil
	}
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	t := table(n.ID)
	pre := &nftables.Chain{Name: "prerouting", Table: t}
	for _, p := range ports {
		proto := byte(unix.IPPROTO_TCP)
		if p.Protocol == UDP {
			proto = unix.IPPROTO_UDP
		}
		ex := []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname(n.Bridge)},
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
		}
		if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
			ip := p.HostIP.As4()
			ex = append(ex,
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ip[:]})
		}
		to := p.Address.As4()
		ex = append(ex,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p.HostPort)},
			&expr.Immediate{Register: 1, Data: to[:]},
			&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(p.ContainerPort)},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
		)
		c.AddRule(&nftables.Rule{Table: t, Chain: pre, Exprs: ex})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: add the published ports' DNAT rules: %w", err)
	}
	return nil
}

// ifname is an interface name as the kernel compares it: NUL-padded to
// IFNAMSIZ.
func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func netmask(bits int) [4]byte {
	var m [4]byte
	binary.BigEndian.PutUint32(m[:], ^uint32(0)<<(32-bits))
	return m
}
