package supervisor

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/stack-containers/stack/internal/capability"
	"github.com/stack-containers/stack/manifest"
	"github.com/stack-containers/stack/runtime"
)

// spec builds the runtime's description of c; c.mu is held.
func (s *Supervisor) spec(c *container) (*runtime.Spec, error) {
	d := c.def
	env := environ(d)
	namespaces := make([]string, len(d.Namespaces))
	for i, ns := range d.Namespaces {
		namespaces[i] = string(ns)
	}
	// A cgroup namespace always, as Docker gives one on cgroup v2 hosts:
	// the container sees its own cgroup as / and no host cgroup path.
	if !slices.Contains(namespaces, string(manifest.NamespaceCgroup)) {
		namespaces = append(namespaces, string(manifest.NamespaceCgroup))
	}
	var join map[string]int
	for ns, other := range d.Join {
		pid := s.ctrs[other].pid()
		if pid == 0 {
			return nil, fmt.Errorf("container %q: join the %s namespace of %q: it is not running", d.Name, ns, other)
		}
		if join == nil {
			join = map[string]int{}
		}
		join[string(ns)] = pid
	}
	// The name files first: a mount of the user's over /etc wins, as in
	// Compose.
	mounts := s.netMounts(d.Name)
	for _, m := range d.Mounts {
		rm := runtime.Mount{Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly}
		if m.Volume != "" {
			rm.Source = VolumeDir(s.cfg.DataDir, s.stack.Name, m.Volume)
			rm.CopyUp = true
		}
		mounts = append(mounts, rm)
	}
	return &runtime.Spec{
		Name:       d.Name,
		Init:       s.cfg.Init,
		Layers:     c.layers,
		Args:       d.Command,
		Env:        env,
		Workdir:    d.Workdir,
		Hostname:   d.Hostname,
		User:       userOf(d),
		UID:        d.UID,
		GID:        d.GID,
		Namespaces: namespaces,
		Caps:       capability.Resolve(d.CapAdd, d.CapDrop),
		Seccomp:    d.SeccompProfile,
		Join:       join,
		ReadOnly:   d.ReadOnly,
		Mounts:     mounts,
		LayerDir:   layerDir(c.dir),
		Cgroup:     c.cg,
		// See doc.go, "When the supervisor dies".
		ParentDeathSignal: syscall.SIGKILL,
	}, nil
}

// environ is the container's environment as KEY=VALUE, sorted.
func environ(d *manifest.Container) []string {
	env := make([]string, 0, len(d.Env))
	for k, v := range d.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// execConfigOf is what every process exec'd into the container runs with
// unless asked otherwise.
func execConfigOf(d *manifest.Container) ExecConfig {
	return ExecConfig{Env: environ(d), Workdir: d.Workdir, User: userOf(d), UID: d.UID, GID: d.GID,
		Caps: capability.Resolve(d.CapAdd, d.CapDrop), Seccomp: d.SeccompProfile}
}

// userOf is the user the container's processes run as, for the init to
// look up again in the container's root for their groups: the manifest's
// or the image's, else uid 0, Docker's default, whose entry in /etc/passwd
// makes it root with root's groups of /etc/group. A user with an explicit
// group ("1000:1000", the "0:0" of a rootfs container) has that group
// alone, and its uid and gid are d's already (resolveUser): it is not
// looked up again, which spares every start of such a container reading
// both files.
func userOf(d *manifest.Container) string {
	switch {
	case d.User == "":
		return "0"
	case strings.Contains(d.User, ":"):
		return ""
	}
	return d.User
}
