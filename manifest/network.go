package manifest

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// NetworkMode is a container's `network`.
type NetworkMode string

// The network modes. A container that has no net namespace of its own
// (the host's, or another container's) has none: "".
const (
	NetworkStack NetworkMode = "stack"
	NetworkNone  NetworkMode = "none"
)

// Network is the stack's top-level `network`.
type Network struct {
	// Subnet is the stack network's subnet; invalid (the zero Prefix)
	// lets stack choose a free /24 when the stack comes up.
	Subnet netip.Prefix
}

// Port is one published port, after ranges are expanded.
type Port struct {
	// HostIP is 0.0.0.0 unless the manifest names an address.
	HostIP        netip.Addr
	HostPort      uint16
	ContainerPort uint16
	// Protocol is "tcp" or "udp".
	Protocol string
}

func (p Port) String() string {
	return fmt.Sprintf("%s:%d:%d/%s", p.HostIP, p.HostPort, p.ContainerPort, p.Protocol)
}

// stackNetwork decodes the top-level `network`.
func (d *decoder) stackNetwork(n *yaml.Node, st *Stack) {
	m := d.expect(n, "network", yaml.MappingNode, "a mapping with subnet")
	if m == nil {
		return
	}
	f := d.fields(m, "network", []string{"subnet"})
	sn, ok := f["subnet"]
	if !ok {
		return
	}
	s, ok := d.str(sn, "network.subnet")
	if !ok {
		return
	}
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil || !p.Addr().Is4():
		d.errorf(sn, "network.subnet", "%q is not an IPv4 network (like 10.89.3.0/24)", s)
	case p.Bits() < 8 || p.Bits() > 29:
		d.errorf(sn, "network.subnet", "%s: the prefix length must be between 8 and 29", s)
	case p.Masked() != p:
		d.errorf(sn, "network.subnet", "%s has host bits set (did you mean %s?)", s, p.Masked())
	default:
		st.Network.Subnet = p
	}
}

// networkMode decodes a container's `network`.
func (d *decoder) networkMode(n *yaml.Node, path string) NetworkMode {
	s, ok := d.str(n, path)
	if !ok {
		return ""
	}
	switch m := NetworkMode(s); m {
	case NetworkStack, NetworkNone:
		return m
	}
	d.errorf(n, path, "must be stack or none, not %q", s)
	return ""
}

// ports decodes a container's `ports`.
func (d *decoder) ports(n *yaml.Node, path string) []Port {
	seq := d.expect(n, path, yaml.SequenceNode, "a list of ports")
	if seq == nil {
		return nil
	}
	var out []Port
	for i, item := range seq.Content {
		ip := fmt.Sprintf("%s[%d]", path, i)
		item = d.resolve(item)
		if item == nil {
			return out
		}
		if item.Kind != yaml.ScalarNode || (!isString(item) && item.ShortTag() != "!!int") {
			d.errorf(item, ip, "must be a string like \"8080:80\", not %s", kindName(item))
			continue
		}
		ps, err := ParsePort(item.Value)
		if err != nil {
			d.errorf(item, ip, "%v", err)
			continue
		}
		out = append(out, ps...)
	}
	return out
}

// ParsePort reads one `ports` entry, [HOST_IP:]HOST_PORT:CONTAINER_PORT
// [/tcp|/udp] or CONTAINER_PORT[/tcp|/udp], where a port may be a range
// "8000-8002", into one Port per port.
func ParsePort(s string) ([]Port, error) {
	spec, proto, hasProto := strings.Cut(s, "/")
	if !hasProto {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		return nil, fmt.Errorf("%q: the protocol must be tcp or udp, not %q", s, proto)
	}
	parts := strings.Split(spec, ":")
	hostIP := netip.IPv4Unspecified()
	var hostPart, containerPart string
	switch len(parts) {
	case 1:
		hostPart, containerPart = parts[0], parts[0]
	case 2:
		hostPart, containerPart = parts[0], parts[1]
	case 3:
		a, err := netip.ParseAddr(parts[0])
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("%q: %q is not an IPv4 address", s, parts[0])
		}
		hostIP, hostPart, containerPart = a, parts[1], parts[2]
	default:
		return nil, fmt.Errorf("%q: not [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp]", s)
	}
	hlo, hhi, err := portRange(hostPart)
	if err != nil {
		return nil, fmt.Errorf("%q: host port: %w", s, err)
	}
	clo, chi, err := portRange(containerPart)
	if err != nil {
		return nil, fmt.Errorf("%q: container port: %w", s, err)
	}
	if hhi-hlo != chi-clo {
		return nil, fmt.Errorf("%q: the host and container ranges differ in size", s)
	}
	var out []Port
	for i := 0; i <= hhi-hlo; i++ {
		out = append(out, Port{HostIP: hostIP, HostPort: uint16(hlo + i), ContainerPort: uint16(clo + i), Protocol: proto})
	}
	return out, nil
}

// portRange reads "N" or "N-M".
func portRange(s string) (int, int, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := portNumber(lo)
	if err != nil || !isRange {
		return a, a, err
	}
	b, err := portNumber(hi)
	if err != nil {
		return 0, 0, err
	}
	if b < a {
		return 0, 0, fmt.Errorf("range %s ends before it starts", s)
	}
	return a, b, nil
}

func portNumber(s string) (int, error) {
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 || v > 65535 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	return v, nil
}

// linkNetwork checks `network` and `ports` against the container's net
// namespace and fills in the default mode: they belong to the container
// that owns its net namespace.
func (d *decoder) linkNetwork(e *entry) {
	c := e.c
	owner := ""
	if target, ok := c.Join[NamespaceNet]; ok {
		owner = fmt.Sprintf("container %q, whose net namespace %q joins: set it there", target, c.Name)
	} else if !hasNamespace(c.Namespaces, NamespaceNet) {
		owner = "the host, whose network this container shares (net is not in its namespaces)"
	}
	if owner != "" {
		if e.network != nil {
			d.errorf(e.network, join(e.path, "network"), "belongs to %s", owner)
		}
		if e.ports != nil {
			d.errorf(e.ports, join(e.path, "ports"), "belong to %s", owner)
		}
		return
	}
	if c.Network == "" {
		c.Network = NetworkStack
	}
	if c.Network == NetworkNone && len(c.Ports) > 0 {
		d.errorf(e.ports, join(e.path, "ports"), "need network: stack (this container has network: none)")
	}
}

func hasNamespace(list []Namespace, ns Namespace) bool {
	for _, n := range list {
		if n == ns {
			return true
		}
	}
	return false
}

// linkPorts reports a host port published twice in the stack.
func (d *decoder) linkPorts(entries []*entry) {
	type key struct {
		proto string
		port  uint16
	}
	seen := map[key][]struct {
		ip   netip.Addr
		name string
	}{}
	for _, e := range entries {
		for _, p := range e.c.Ports {
			k := key{p.Protocol, p.HostPort}
			for _, s := range seen[k] {
				if s.ip == p.HostIP || s.ip.IsUnspecified() || p.HostIP.IsUnspecified() {
					d.errorf(e.ports, join(e.path, "ports"), "host port %d/%s is published twice (also by %q)", p.HostPort, p.Protocol, s.name)
				}
			}
			seen[k] = append(seen[k], struct {
				ip   netip.Addr
				name string
			}{p.HostIP, e.c.Name})
		}
	}
}
