package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/stack-containers/stack/manifest"
	"github.com/stack-containers/stack/network"
	"github.com/stack-containers/stack/runtime"
)

// The stack's network: made after the first state write and before any
// container (prepare), one veth pair per start of a container on it
// (startRun), and removed with the rest of the stack (release, and
// clearStack after a supervisor that died).

// stackNet is the stack's network while its supervisor runs.
type stackNet struct {
	net       *network.Network
	published *network.Published
	// addrs holds the address of every container on the network, its
	// joiners included (they share it).
	addrs map[string]netip.Addr
	// hosts is what the /etc/hosts of every container on the network is
	// made of (writeHostsFiles).
	hosts []network.Host
	// hostsFiles maps each container on the network to the file bound as
	// its /etc/hosts: the one they share (Paths.NetSharedHosts), unless
	// its hostname makes its own differ.
	hostsFiles map[string]string
}

// ownsStackNet reports whether c has a net namespace of its own on the
// stack's network: it gets an interface and an address.
func ownsStackNet(c *manifest.Container) bool {
	return c.Network == manifest.NetworkStack
}

// netOwner is the container whose net namespace c uses: c itself, the
// one it joins, and so on.
func (s *Supervisor) netOwner(c *manifest.Container) *manifest.Container {
	for {
		target, ok := c.Join[manifest.NamespaceNet]
		if !ok {
			return c
		}
		c = s.stack.Containers[target]
	}
}

// networkPlan is the network as the first state write records it: the ID
// and bridge name are fixed by the stack's directory, so a down finds the
// devices even if this process dies while making them.
func (s *Supervisor) networkPlan() *network.Network {
	for _, name := range s.graph.names() {
		if ownsStackNet(s.stack.Containers[name]) {
			id := network.ID(s.paths.Dir)
			return &network.Network{ID: id, Bridge: network.BridgeName(id)}
		}
	}
	return nil
}

// createNetwork makes the stack's network, gives every container on it its
// address, writes the /etc/resolv.conf they share, gathers what their
// /etc/hosts hold, and binds the published ports. It records all of it in
// the state.
func (s *Supervisor) createNetwork(plan *network.Network) error {
	n, err := network.Create(plan.ID, s.cfg.StateDir, s.stack.Network.Subnet)
	if err != nil {
		return fmt.Errorf("create the network: %w", err)
	}
	s.net = &stackNet{net: n, addrs: map[string]netip.Addr{}}
	s.state.change(func(st *State) { st.Network = n })
	// Addresses in name order, so that the same manifest gives the same
	// addresses on every up.
	i := 0
	for _, name := range s.graph.names() {
		if !ownsStackNet(s.stack.Containers[name]) {
			continue
		}
		if s.net.addrs[name], err = network.Address(n.Subnet, i); err != nil {
			return err
		}
		i++
	}
	var hosts []network.Host
	var ports []network.Port
	for _, name := range s.graph.names() {
		def := s.stack.Containers[name]
		owner := s.netOwner(def)
		addr, ok := s.net.addrs[owner.Name]
		if !ok {
			continue
		}
		s.net.addrs[name] = addr
		hosts = append(hosts, network.Host{Address: addr, Names: []string{name, name + "." + s.stack.Name}})
		var cp []network.Port
		for _, p := range def.Ports {
			cp = append(cp, network.Port{HostIP: p.HostIP, HostPort: p.HostPort, ContainerPort: p.ContainerPort,
				Protocol: network.Protocol(p.Protocol), Address: addr})
		}
		ports = append(ports, cp...)
		s.state.update(name, func(cs *ContainerState) {
			cs.IP = addr.String()
			cs.Ports = cp
		})
	}
	s.net.hosts = hosts
	if err := os.MkdirAll(filepath.Dir(s.paths.NetResolvConf()), 0o755); err != nil {
		return fmt.Errorf("make the name files' directory: %w", err)
	}
	if err := s.writeHostsFiles(); err != nil {
		return err
	}
	resolv, err := network.ResolvConf()
	if err != nil {
		return err
	}
	if err := os.WriteFile(s.paths.NetResolvConf(), resolv, 0o644); err != nil {
		return fmt.Errorf("write resolv.conf: %w", err)
	}
	if s.net.published, err = n.Publish(ports); err != nil {
		return wrapName(s.portOwner(err, ports), err)
	}
	return nil
}

// portOwner names the container whose published port err is about.
func (s *Supervisor) portOwner(err error, ports []network.Port) string {
	for _, name := range s.graph.names() {
		for _, p := range s.stack.Containers[name].Ports {
			np := network.Port{HostIP: p.HostIP, HostPort: p.HostPort, Protocol: network.Protocol(p.Protocol)}
			var pe *network.PortError
			if errors.As(err, &pe) && pe.Port.String() == np.String() {
				return name
			}
		}
	}
	return "?"
}

// netMounts are the name files bound into a container on the network.
func (s *Supervisor) netMounts(name string) []runtime.Mount {
	if s.net == nil {
		return nil
	}
	if _, ok := s.net.addrs[name]; !ok {
		return nil
	}
	return []runtime.Mount{
		{Source: s.net.hostsFiles[name], Target: "/etc/hosts", ReadOnly: true},
		{Source: s.paths.NetResolvConf(), Target: "/etc/resolv.conf", ReadOnly: true},
	}
}

// attach names the veth pair of one start of a container that owns its
// place on the network (the runtime makes it); nil for any other
// container.
func (s *Supervisor) attach(c *container) (*network.Interface, error) {
	if s.net == nil || !ownsStackNet(c.def) {
		return nil, nil
	}
	iface, err := s.net.net.Interface(s.net.addrs[c.def.Name])
	if err != nil {
		return nil, fmt.Errorf("container %q: %w", c.def.Name, err)
	}
	return iface, nil
}

// removeNetwork closes the published ports and removes the network.
func (s *Supervisor) removeNetwork(plan *network.Network) error {
	var errs []error
	if s.net != nil && s.net.published != nil {
		errs = append(errs, s.net.published.Close())
	}
	if plan != nil {
		errs = append(errs, network.Remove(plan.ID))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove the network: %w", err)
	}
	return nil
}

// hostsFile is the /etc/hosts of the named container on the network: every
// container's name and address, and its own hostname on its own address.
func (s *Supervisor) hostsFile(name string) []byte {
	def := s.stack.Containers[name]
	hostname := def.Hostname
	if hostname == "" {
		hostname = s.netOwner(def).Hostname
	}
	return network.HostsFile(s.net.hosts, hostname, s.net.addrs[name])
}

// writeHostsFiles decides which file each container on the network gets
// as its /etc/hosts, and writes them. A container's file differs from the
// others' only when its hostname is not already on every line of its
// address (a hostname of its own; an address shared with a joiner): those
// get a file of their own, and all the others one file they share, bound
// read-only, rather than one each, since each file is an inode made at
// every up and freed at every down. Every address is known by then
// (createNetwork).
func (s *Supervisor) writeHostsFiles() error {
	shared := network.HostsFile(s.net.hosts, "", netip.Addr{})
	if err := os.WriteFile(s.paths.NetSharedHosts(), shared, 0o644); err != nil {
		return fmt.Errorf("write hosts: %w", err)
	}
	s.net.hostsFiles = map[string]string{}
	for _, name := range s.graph.names() {
		if _, ok := s.net.addrs[name]; !ok {
			continue
		}
		s.net.hostsFiles[name] = s.paths.NetSharedHosts()
		if own := s.hostsFile(name); !bytes.Equal(own, shared) {
			s.net.hostsFiles[name] = s.paths.NetHosts(name)
			if err := os.WriteFile(s.paths.NetHosts(name), own, 0o644); err != nil {
				return fmt.Errorf("container %q: write hosts: %w", name, err)
			}
		}
	}
	return nil
}
