package kube

import (
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/manifest"
)

// containerFields map a container's fields, one function per field (or
// pair of fields that Kubernetes maps together). A field the manifest
// gains is one more function here.
var containerFields = []func(*podBuild, *manifest.Container, *corev1.Container){
	(*podBuild).image,
	(*podBuild).command,
	(*podBuild).env,
	(*podBuild).workdir,
	(*podBuild).resources,
	(*podBuild).pids,
	(*podBuild).security,
	(*podBuild).mounts,
	(*podBuild).ports,
	(*podBuild).stopSignal,
	(*podBuild).healthcheck,
	(*podBuild).dependsOn,
}

func (b *podBuild) container(c *manifest.Container) corev1.Container {
	k := corev1.Container{Name: b.cv.names[c.Name]}
	for _, f := range containerFields {
		f(b, c, &k)
	}
	return k
}

func path(c *manifest.Container, field string) string { return "containers." + c.Name + "." + field }

// image names the container's image: the one a rootfs was packed into and
// pushed as, or the manifest's image as the caller resolved it (by the
// digest stack pulled, where it did), both in Options.Images.
func (b *podBuild) image(c *manifest.Container, k *corev1.Container) {
	source := c.Rootfs
	if c.Image != "" {
		source = c.Image
	}
	ref, ok := b.cv.opts.Images[source]
	switch {
	case !ok && c.Rootfs != "":
		b.cv.problem(path(c, "rootfs"), false, "a rootfs has to be packed into an image and pushed to a registry the cluster can pull from: give --image-registry")
		return
	case !ok:
		b.cv.problem(path(c, "image"), false, "%s is not in a registry the cluster can pull from: push it to one and name it there", c.Image)
		return
	}
	k.Image = ref
	k.ImagePullPolicy = corev1.PullIfNotPresent
	if c.Image == "" {
		return
	}
	if !strings.Contains(ref, "@sha256:") {
		b.notes.add(path(c, "image"), "%s is named by its tag, which can move: stack has not pulled it (`stack pull` first, to name it by digest and carry its HEALTHCHECK over)", ref)
	}
	switch c.PullPolicy {
	case manifest.PullAlways:
		k.ImagePullPolicy = corev1.PullAlways
	case manifest.PullNever:
		k.ImagePullPolicy = corev1.PullNever
	}
}

// command maps the entrypoint and command. An image keeps its own where
// the manifest has none: entrypoint is the container's command and
// command its args, as Kubernetes names them. A rootfs has no image
// config, so both together are the container's command.
//
// Kubernetes expands $(VAR) in command, args and env values and turns $$
// into $; stack passes them as written, so every '$' is doubled.
func (b *podBuild) command(c *manifest.Container, k *corev1.Container) {
	if c.Image != "" {
		k.Command = escapeAll(c.Entrypoint)
		k.Args = escapeAll(c.Command)
		return
	}
	k.Command = escapeAll(slices.Concat(c.Entrypoint, c.Command))
}

func escape(s string) string { return strings.ReplaceAll(s, "$", "$$") }

func escapeAll(ss []string) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = escape(s)
	}
	return out
}

func (b *podBuild) env(c *manifest.Container, k *corev1.Container) {
	for _, name := range slices.Sorted(maps.Keys(c.Env)) {
		k.Env = append(k.Env, corev1.EnvVar{Name: name, Value: escape(c.Env[name])})
	}
}

func (b *podBuild) workdir(c *manifest.Container, k *corev1.Container) {
	k.WorkingDir = c.Workdir
}

// resources maps memory and cpus to limits, and to requests of the same
// amount: stack reserves nothing beyond the limit, and a request below it
// would let the scheduler put the Pod where the limit does not fit.
// Kubernetes counts CPU in thousandths of a core: cpus is rounded up to one.
func (b *podBuild) resources(c *manifest.Container, k *corev1.Container) {
	list := corev1.ResourceList{}
	if c.Memory > 0 {
		// In the form the API server writes back: Mi and Gi where they
		// are exact, else decimal (2000000 is "2M").
		format := resource.DecimalSI
		if c.Memory%1024 == 0 {
			format = resource.BinarySI
		}
		list[corev1.ResourceMemory] = *resource.NewQuantity(c.Memory, format)
	}
	if c.CPUs > 0 {
		milli := int64(math.Ceil(c.CPUs * 1000))
		if float64(milli) != c.CPUs*1000 {
			b.notes.add(path(c, "cpus"), "%g: Kubernetes counts CPU in thousandths of a core, so it is %dm", c.CPUs, milli)
		}
		list[corev1.ResourceCPU] = *resource.NewMilliQuantity(milli, resource.DecimalSI)
	}
	if len(list) == 0 {
		return
	}
	k.Resources.Limits = list
	k.Resources.Requests = list.DeepCopy()
}

func (b *podBuild) pids(c *manifest.Container, _ *corev1.Container) {
	if c.Pids > 0 {
		b.notes.add(path(c, "pids"), "%d: Kubernetes limits processes per Pod only on the node, for all Pods at once (the kubelet's podPidsLimit): not carried over", c.Pids)
	}
}

// security gives the container what stack gives every container: no new
// privileges, Docker's capabilities changed by cap_add and cap_drop, the
// seccomp profile (Kubernetes's own default is none: "default" is the
// runtime's, which is Docker's on the usual runtimes), and the user and
// read-only root of the manifest. A packed rootfs has no user in its
// image, so the user is root unless the manifest says otherwise.
func (b *podBuild) security(c *manifest.Container, k *corev1.Container) {
	sc := &corev1.SecurityContext{
		AllowPrivilegeEscalation: new(false),
		SeccompProfile:           b.seccomp(c),
	}
	b.user(c, sc)
	if c.ReadOnly {
		sc.ReadOnlyRootFilesystem = new(true)
	}
	if len(c.CapAdd)+len(c.CapDrop) > 0 {
		sc.Capabilities = &corev1.Capabilities{Add: capabilities(c.CapAdd), Drop: capabilities(c.CapDrop)}
	}
	k.SecurityContext = sc
}

// user maps a user written as numbers; without one the image's user
// applies (root for a packed rootfs, as stack's 0:0). Kubernetes takes no
// names: a user or group written as a name is refused.
func (b *podBuild) user(c *manifest.Container, sc *corev1.SecurityContext) {
	// A packed rootfs's image has no user: it runs as root already.
	if c.User == "" || c.Rootfs != "" && c.User == "0:0" {
		return
	}
	uid, gid, hasGroup := strings.Cut(c.User, ":")
	if !numeric(uid) || hasGroup && !numeric(gid) {
		b.cv.problem(path(c, "user"), false, "%q has a name: Kubernetes takes a user and group as numbers only (runAsUser, runAsGroup): write them as uid:gid", c.User)
		return
	}
	sc.RunAsUser = new(int64(c.UID))
	if hasGroup {
		sc.RunAsGroup = new(int64(c.GID))
	}
}

func numeric(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// capabilities spells capability names as Kubernetes does: NET_ADMIN,
// not CAP_NET_ADMIN.
func capabilities(names []string) []corev1.Capability {
	var out []corev1.Capability
	for _, n := range names {
		out = append(out, corev1.Capability(strings.TrimPrefix(n, "CAP_")))
	}
	return out
}

// seccompDir is where a Localhost profile is looked up on each node,
// under the kubelet's seccomp directory.
const seccompDir = "stack"

// seccomp maps the profile. A profile file becomes a Localhost profile,
// which the kubelet reads from its own directory on each node, hence the
// note; the runtimes take Docker's JSON format as stack does.
func (b *podBuild) seccomp(c *manifest.Container) *corev1.SeccompProfile {
	switch c.Seccomp {
	case "", "default":
		return &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	case "unconfined":
		return &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
	}
	local := seccompDir + "/" + filepath.Base(c.Seccomp)
	b.notes.add(path(c, "seccomp"), "%s: a Localhost profile: copy it to every node as %s under the kubelet's seccomp directory (usually /var/lib/kubelet/seccomp/%s)", c.Seccomp, local, local)
	return &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: new(local)}
}

// stopSignal: Kubernetes sends SIGTERM (a per-container stop signal is
// behind a feature gate that clusters do not have on by default).
func (b *podBuild) stopSignal(c *manifest.Container, _ *corev1.Container) {
	if c.StopSignal != 0 && c.StopSignal != syscall.SIGTERM {
		b.notes.add(path(c, "stop_signal"), "%s: Kubernetes stops a container with SIGTERM: make the program stop on it", signalName(c.StopSignal))
	}
}

// dependsOn: Kubernetes starts Pods in no order, and a join's order is
// its Pod's, so the other dependencies are notes. An init container that
// waits is not written: it would need an image of its own (a shell and a
// client for the dependency's protocol) that the stack does not have.
func (b *podBuild) dependsOn(c *manifest.Container, _ *corev1.Container) {
	var others []string
	for _, d := range c.DependsOn {
		if slices.Contains(slices.Collect(maps.Values(c.Join)), d) {
			continue
		}
		if cond := c.Conditions[d]; cond != "" && cond != manifest.ConditionStarted {
			d += " (" + string(cond) + ")"
		}
		others = append(others, d)
	}
	if len(others) > 0 {
		b.notes.add(path(c, "depends_on"), "%s: Kubernetes starts Pods in no order and waits for no other Pod: the container must retry until what it needs answers", strings.Join(others, ", "))
	}
}

// healthcheck maps a health check to a readiness probe that runs the same
// command. Kubernetes counts in whole seconds (rounded up, at least 1). A
// Pod is not ready until the probe first succeeds, as a container is
// "starting" until its check first passes, so failures while it starts do
// not count either; what is lost is start_interval, the faster pace of
// checks during start_period.
func (b *podBuild) healthcheck(c *manifest.Container, k *corev1.Container) {
	h := c.Healthcheck
	if h == nil || h.Disabled || len(h.Test) == 0 {
		return
	}
	secs := func(field string, d time.Duration) int32 {
		s := int32(max(1, math.Ceil(d.Seconds())))
		if time.Duration(s)*time.Second != d {
			b.notes.add(path(c, "healthcheck."+field), "%s: Kubernetes counts probe times in whole seconds, so it is %ds", d, s)
		}
		return s
	}
	k.ReadinessProbe = &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: h.Test}},
		PeriodSeconds:    secs("interval", h.Interval),
		TimeoutSeconds:   secs("timeout", h.Timeout),
		FailureThreshold: int32(min(max(h.Retries, 1), math.MaxInt32)),
		SuccessThreshold: 1,
	}
	if h.StartPeriod > 0 {
		b.notes.add(path(c, "healthcheck.start_period"), "%s: Kubernetes probes every %ds from the start, not every start_interval (%s) while the container starts", h.StartPeriod, k.ReadinessProbe.PeriodSeconds, h.StartInterval)
	}
}

func signalName(s syscall.Signal) string {
	if name := unix.SignalName(s); name != "" {
		return name
	}
	return fmt.Sprintf("signal %d", int(s))
}

// validationLabel returns why Kubernetes refuses s as a DNS-1123 label, or
// "".
func validationLabel(s string) string {
	if errs := validation.IsDNS1123Label(s); len(errs) > 0 {
		return errs[0]
	}
	return ""
}
