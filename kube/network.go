package kube

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/stack-containers/stack/manifest"
)

// ports publishes a container's ports: each is a containerPort with its
// hostPort (and hostIP) on the node, which is what `ports:` does on this
// machine, and a port of the Pod's Services.
func (b *podBuild) ports(c *manifest.Container, k *corev1.Container) {
	for _, p := range c.Ports {
		cp := corev1.ContainerPort{
			ContainerPort: int32(p.ContainerPort),
			HostPort:      int32(p.HostPort),
			Protocol:      protocol(p.Protocol),
		}
		if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
			cp.HostIP = p.HostIP.String()
		}
		k.Ports = append(k.Ports, cp)
	}
	if len(c.Ports) > 0 {
		b.notes.add(path(c, "ports"), "published on the node's own ports (hostPort), so one such Pod fits on a node; a Service of type LoadBalancer, or an Ingress, is the usual way in")
	}
}

func protocol(p string) corev1.Protocol {
	if p == "udp" {
		return corev1.ProtocolUDP
	}
	return corev1.ProtocolTCP
}

// servicePorts are the ports a Pod's containers publish, once each, for
// its Services: a headless Service reaches every port anyway, these name
// them.
func servicePorts(spec corev1.PodSpec) []corev1.ServicePort {
	var out []corev1.ServicePort
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			if slices.ContainsFunc(out, func(sp corev1.ServicePort) bool {
				return sp.Port == p.ContainerPort && sp.Protocol == p.Protocol
			}) {
				continue
			}
			out = append(out, corev1.ServicePort{
				Name:       fmt.Sprintf("%s-%d", map[corev1.Protocol]string{corev1.ProtocolTCP: "tcp", corev1.ProtocolUDP: "udp"}[p.Protocol], p.ContainerPort),
				Port:       p.ContainerPort,
				TargetPort: intstr.FromInt32(p.ContainerPort),
				Protocol:   p.Protocol,
			})
		}
	}
	return out
}

// isolated says whether the Pod is off the stack's network: its owner has
// network: none (loopback only). Such a Pod gets no Service, as its name
// resolves to nothing on the stack's network.
func (b *podBuild) isolated() bool {
	return b.g.owner.Network == manifest.NetworkNone
}

// networkNone: every Pod is on the cluster's network, so network: none
// has no twin; the nearest honest thing is a NetworkPolicy that lets
// nothing in or out of the Pod, which holds where the cluster's network
// plugin enforces policies.
func (b *podBuild) networkNone(name string, labels map[string]string) *Object {
	if !b.isolated() {
		return nil
	}
	b.notes.add(path(b.g.owner, "network"), "none: a Pod is always on the cluster's network; NetworkPolicy %s lets no traffic in or out, where the cluster's network plugin enforces policies", name)
	np := &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: b.cv.meta(name, labels),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: labels},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		},
	}
	return &Object{Object: np, Kind: "NetworkPolicy", Name: name,
		Comments: []string{fmt.Sprintf("containers.%s (network: none) -> NetworkPolicy %s: no traffic in or out of Pod %s", b.g.owner.Name, name, name)}}
}

// stackNetwork notes a subnet: the cluster gives Pods their addresses.
func (cv *converter) stackNetwork() notes {
	var ns notes
	if cv.st.Network.Subnet.IsValid() {
		ns.add("network.subnet", "%s: the cluster gives Pods their addresses from its own range", cv.st.Network.Subnet)
	}
	return ns
}
