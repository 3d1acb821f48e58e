package kube

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stack-containers/stack/manifest"
)

// notes collects one group's notes.
type notes []Note

func (ns *notes) add(path, format string, args ...any) {
	*ns = append(*ns, Note{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// podBuild is a Pod being built: the spec the field functions fill in and
// the notes they leave.
type podBuild struct {
	cv    *converter
	g     *group
	spec  corev1.PodSpec
	notes notes
	// volumes counts the Pod's volumes, to name each uniquely.
	volumes int
}

// pod maps a group to its workload and one Service per container.
func (cv *converter) pod(g *group) ([]Object, []Note) {
	b := &podBuild{cv: cv, g: g}
	b.spec.EnableServiceLinks = new(false)
	b.spec.AutomountServiceAccountToken = new(false)
	for _, c := range g.members() {
		b.containerName(c)
		b.spec.Containers = append(b.spec.Containers, b.container(c))
	}
	for _, f := range podFields {
		f(b)
	}
	name := cv.names[g.owner.Name]
	labels := cv.labels(name)
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       b.spec,
	}
	workload := b.workload(name, labels, template)
	objs := []Object{workload}
	if np := b.networkNone(name, labels); np != nil {
		objs = append(objs, *np)
	} else {
		for _, c := range g.members() {
			objs = append(objs, cv.service(c, name, labels, servicePorts(b.spec)))
		}
	}
	var lines []string
	for _, n := range b.notes {
		lines = append(lines, "note: "+n.String())
	}
	objs[0].Comments = append(objs[0].Comments, lines...)
	return objs, b.notes
}

// labels are the labels of a Pod and its workload; the Services select
// the Pod by them.
func (cv *converter) labels(pod string) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":       pod,
		"app.kubernetes.io/part-of":    cv.st.Name,
		"app.kubernetes.io/managed-by": "stack",
	}
}

func (cv *converter) meta(name string, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: cv.opts.Namespace, Labels: labels}
}

// containerName notes a name that Kubernetes spells differently.
func (b *podBuild) containerName(c *manifest.Container) {
	if k := b.cv.names[c.Name]; k != c.Name {
		b.notes.add("containers."+c.Name, "is named %q in Kubernetes, which allows no '_' in names: the other containers reach it by that name", k)
	}
}

// podFields map the manifest's fields that are the Pod's, not one
// container's: the owner's, as its joiners share its namespaces.
var podFields = []func(*podBuild){
	(*podBuild).hostname,
	(*podBuild).namespaces,
	(*podBuild).stopTimeout,
	(*podBuild).joins,
}

func (b *podBuild) hostname() {
	c := b.g.owner
	if c.Hostname == "" {
		return
	}
	if c.Hostname == kubeName(c.Name) {
		b.spec.Hostname = b.cv.names[c.Name]
		return
	}
	// A Pod's hostname is a DNS-1123 label; a manifest hostname may be
	// longer (a domain name).
	if errs := validationLabel(c.Hostname); errs != "" {
		b.cv.problem("containers."+c.Name+".hostname", false, "Kubernetes refuses %q as a Pod's hostname (%s)", c.Hostname, errs)
		return
	}
	b.spec.Hostname = c.Hostname
}

// namespaces maps the owner's namespaces: one it does not create is the
// node's (hostNetwork and the like).
func (b *podBuild) namespaces() {
	c := b.g.owner
	path := "containers." + c.Name + ".namespaces"
	has := func(ns manifest.Namespace) bool { return slices.Contains(c.Namespaces, ns) }
	if !has(manifest.NamespaceNet) {
		b.spec.HostNetwork = true
		b.notes.add(path, "no net namespace: the Pod uses its node's network (hostNetwork)")
	}
	if !has(manifest.NamespacePID) {
		b.spec.HostPID = true
		b.notes.add(path, "no pid namespace: the Pod sees its node's processes (hostPID)")
	}
	if !has(manifest.NamespaceIPC) {
		b.spec.HostIPC = true
		b.notes.add(path, "no ipc namespace: the Pod uses its node's IPC namespace (hostIPC)")
	}
	if !has(manifest.NamespaceUTS) && !b.spec.HostNetwork {
		b.notes.add(path, "no uts namespace: a Pod always has one of its own, unless it uses the node's network")
	}
}

// stopTimeout maps stop_timeout to the Pod's grace period: the longest of
// its containers', in whole seconds (rounded up). Kubernetes turns a grace
// period of 0 into 1 s; it is written as 1 s here and said.
func (b *podBuild) stopTimeout() {
	var longest time.Duration
	for _, c := range b.g.members() {
		longest = max(longest, c.StopTimeout)
	}
	secs := int64(math.Ceil(longest.Seconds()))
	path := "containers." + b.g.owner.Name + ".stop_timeout"
	switch {
	case secs == 0:
		secs = 1
		b.notes.add(path, "0s: Kubernetes's shortest grace period is 1s (a 0 is turned into 1), so it is 1s")
	case time.Duration(secs)*time.Second != longest:
		b.notes.add(path, "%s: Kubernetes counts the grace period in whole seconds, so it is %ds", longest, secs)
	}
	b.spec.TerminationGracePeriodSeconds = new(secs)
}

// joins notes what a Pod shares beyond what the joiners asked for, and
// restart policies that the Pod's cannot honour.
func (b *podBuild) joins() {
	for _, c := range b.g.joiners {
		path := "containers." + c.Name + ".join"
		var joined []string
		for _, ns := range []manifest.Namespace{manifest.NamespaceNet, manifest.NamespaceIPC, manifest.NamespaceUTS} {
			if _, ok := c.Join[ns]; ok {
				joined = append(joined, string(ns))
			}
		}
		if len(joined) < 3 {
			b.notes.add(path, "joins %s only, but the containers of a Pod share net, ipc and uts", strings.Join(joined, ", "))
		}
		if c.Restart.Policy != b.g.owner.Restart.Policy {
			b.notes.add("containers."+c.Name+".restart", "%s: it is in %s's Pod, which restarts as %s's policy (%s) says", c.Restart.Policy, b.g.owner.Name, b.g.owner.Name, b.g.owner.Restart.Policy)
		}
	}
}

// Defaults of the manifest's restart policy (manifest's decoder sets the
// same before decoding).
const (
	defaultBackoff    = 100 * time.Millisecond
	defaultMaxBackoff = 10 * time.Second
)

// workload chooses the object by the owner's restart policy:
//
//   - always: a Deployment of one replica, replaced whole (Recreate) so
//     that two never run at once, as one container never does;
//   - no: a bare Pod that is never restarted;
//   - on-failure: a Job whose Pod's containers restart on failure, as many
//     times as max_retries allows (backoffLimit; unlimited is the largest
//     one Kubernetes takes);
//   - on-oom: no twin; the nearest honest thing is a Job that retries only
//     a Pod whose container was killed by SIGKILL (exit status 137), which
//     is what the OOM killer sends, and fails at once on any other exit.
func (b *podBuild) workload(name string, labels map[string]string, template corev1.PodTemplateSpec) Object {
	c := b.g.owner
	r := c.Restart
	path := "containers." + c.Name + ".restart"
	if r.Policy != manifest.RestartNo && (r.Backoff != defaultBackoff || r.MaxBackoff != defaultMaxBackoff) {
		b.notes.add(path, "backoff %s, max_backoff %s: Kubernetes's restart delay is its own (10s, doubling up to 5m)", r.Backoff, r.MaxBackoff)
	}
	backoffLimit := int32(math.MaxInt32)
	if r.MaxRetries > 0 {
		backoffLimit = int32(min(r.MaxRetries, math.MaxInt32))
	}
	source := fmt.Sprintf("containers.%s (restart: %s)", c.Name, r.Policy)
	switch r.Policy {
	case manifest.RestartAlways:
		if r.MaxRetries > 0 {
			b.notes.add(path, "max_retries %d: a Deployment restarts without limit", r.MaxRetries)
		}
		template.Spec.RestartPolicy = corev1.RestartPolicyAlways
		d := &appsv1.Deployment{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: b.cv.meta(name, labels),
			Spec: appsv1.DeploymentSpec{
				Replicas: new(int32(1)),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
				Template: template,
			},
		}
		return Object{Object: d, Kind: "Deployment", Name: name, Comments: []string{source + " -> Deployment " + name + ", 1 replica"}}
	case manifest.RestartNo:
		template.Spec.RestartPolicy = corev1.RestartPolicyNever
		p := &corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: b.cv.meta(name, labels),
			Spec:       template.Spec,
		}
		return Object{Object: p, Kind: "Pod", Name: name, Comments: []string{source + " -> Pod " + name + ", never restarted"}}
	case manifest.RestartOnOOM:
		b.notes.add(path, "on-oom has no Kubernetes twin: the Job retries a Pod whose container was killed by SIGKILL (exit 137, as the OOM killer does) and fails on any other exit; a SIGKILL from elsewhere is retried too")
		template.Spec.RestartPolicy = corev1.RestartPolicyNever
		j := b.job(name, labels, template, backoffLimit)
		j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
			Action:      batchv1.PodFailurePolicyActionFailJob,
			OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpNotIn, Values: []int32{137}},
		}}}
		return Object{Object: j, Kind: "Job", Name: name, Comments: []string{source + " -> Job " + name + ", " + retries(r.MaxRetries) + " after a SIGKILL"}}
	default: // on-failure
		template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		j := b.job(name, labels, template, backoffLimit)
		return Object{Object: j, Kind: "Job", Name: name, Comments: []string{source + " -> Job " + name + ", " + retries(r.MaxRetries) + " on failure"}}
	}
}

func retries(n int) string {
	if n == 0 {
		return "retried without limit"
	}
	return fmt.Sprintf("retried up to %d times", n)
}

func (b *podBuild) job(name string, labels map[string]string, template corev1.PodTemplateSpec, backoffLimit int32) *batchv1.Job {
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: b.cv.meta(name, labels),
		Spec: batchv1.JobSpec{
			BackoffLimit: new(backoffLimit),
			Template:     template,
		},
	}
}

// service makes the Service that gives container c's name to its Pod.
// It is headless: the name resolves to the Pod's own address and every
// port is reachable, as on the stack's network; and it publishes the Pod
// before it is ready, as stack's names resolve whatever the health.
func (cv *converter) service(c *manifest.Container, pod string, selector map[string]string, ports []corev1.ServicePort) Object {
	name := cv.names[c.Name]
	s := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: cv.meta(name, selector),
		Spec: corev1.ServiceSpec{
			ClusterIP:                corev1.ClusterIPNone,
			Selector:                 selector,
			PublishNotReadyAddresses: true,
			Ports:                    ports,
		},
	}
	comment := fmt.Sprintf("containers.%s -> Service %s: the name resolves to Pod %s's address", c.Name, name, pod)
	return Object{Object: s, Kind: "Service", Name: name, Comments: []string{comment}}
}
