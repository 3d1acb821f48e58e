package manifest

import (
	"go.yaml.in/yaml/v3"
)

// The shapes below give `stack config` its field names and order (the
// encoder sorts map keys); they write every value the way Load reads it
// back, so that printing and loading again yields the same Stack.
type (
	printedStack struct {
		Name       string                      `yaml:"name"`
		Network    *printedNetwork             `yaml:"network,omitempty"`
		Volumes    map[string]struct{}         `yaml:"volumes,omitempty"`
		Containers map[string]printedContainer `yaml:"containers"`
	}
	printedNetwork struct {
		Subnet string `yaml:"subnet"`
	}
	printedContainer struct {
		Rootfs      string               `yaml:"rootfs,omitempty"`
		Image       string               `yaml:"image,omitempty"`
		PullPolicy  PullPolicy           `yaml:"pull_policy,omitempty"`
		Entrypoint  []string             `yaml:"entrypoint,omitempty"`
		Command     []string             `yaml:"command,omitempty"`
		Env         map[string]string    `yaml:"env,omitempty"`
		Workdir     string               `yaml:"workdir,omitempty"`
		Hostname    string               `yaml:"hostname,omitempty"`
		User        string               `yaml:"user,omitempty"`
		Namespaces  []Namespace          `yaml:"namespaces"`
		Join        map[Namespace]string `yaml:"join,omitempty"`
		Memory      int64                `yaml:"memory,omitempty"`
		CPUs        float64              `yaml:"cpus,omitempty"`
		Pids        int64                `yaml:"pids,omitempty"`
		Restart     printedRestart       `yaml:"restart"`
		DependsOn   any                  `yaml:"depends_on,omitempty"`
		Healthcheck *printedHealthcheck  `yaml:"healthcheck,omitempty"`
		StopSignal  any                  `yaml:"stop_signal"`
		StopTimeout string               `yaml:"stop_timeout"`
		ReadOnly    bool                 `yaml:"read_only"`
		Mounts      []string             `yaml:"mounts,omitempty"`
		Network     NetworkMode          `yaml:"network,omitempty"`
		Ports       []string             `yaml:"ports,omitempty"`
		CapAdd      []string             `yaml:"cap_add,omitempty"`
		CapDrop     []string             `yaml:"cap_drop,omitempty"`
		Seccomp     string               `yaml:"seccomp"`
	}
	printedRestart struct {
		Policy     Policy `yaml:"policy"`
		MaxRetries int    `yaml:"max_retries"`
		Backoff    string `yaml:"backoff"`
		MaxBackoff string `yaml:"max_backoff"`
	}
)

// MarshalYAML writes the normalized manifest: defaults filled in, env as
// a mapping, durations as "10s", signals by name, memory in bytes and
// paths absolute, every "$" written "$$". A stack read from a file never names that file, so File
// is left out.
func (s *Stack) MarshalYAML() (any, error) {
	out := printedStack{Name: s.Name, Containers: map[string]printedContainer{}}
	if s.Network.Subnet.IsValid() {
		out.Network = &printedNetwork{Subnet: s.Network.Subnet.String()}
	}
	for _, v := range s.Volumes {
		if out.Volumes == nil {
			out.Volumes = map[string]struct{}{}
		}
		out.Volumes[v] = struct{}{}
	}
	for name, c := range s.Containers {
		pc := printedContainer{
			Rootfs:     c.Rootfs,
			Image:      c.Image,
			PullPolicy: c.PullPolicy,
			Entrypoint: c.Entrypoint,
			Command:    c.Command,
			Env:        c.Env,
			Workdir:    c.Workdir,
			Hostname:   c.Hostname,
			User:       printedUser(c),
			Namespaces: c.Namespaces,
			Join:       c.Join,
			Memory:     c.Memory,
			CPUs:       c.CPUs,
			Pids:       c.Pids,
			Restart: printedRestart{
				Policy:     c.Restart.Policy,
				MaxRetries: c.Restart.MaxRetries,
				Backoff:    c.Restart.Backoff.String(),
				MaxBackoff: c.Restart.MaxBackoff.String(),
			},
			DependsOn:   printConditions(c),
			Healthcheck: printHealthcheck(c.Healthcheck),
			StopSignal:  formatSignal(c.StopSignal),
			StopTimeout: c.StopTimeout.String(),
			ReadOnly:    c.ReadOnly,
			Network:     c.Network,
			CapAdd:      c.CapAdd,
			CapDrop:     c.CapDrop,
			Seccomp:     c.Seccomp,
		}
		for _, p := range c.Ports {
			pc.Ports = append(pc.Ports, p.String())
		}
		for _, m := range c.Mounts {
			mode := "rw"
			if m.ReadOnly {
				mode = "ro"
			}
			source := m.Source
			if m.Volume != "" {
				source = m.Volume
			}
			pc.Mounts = append(pc.Mounts, source+":"+m.Target+":"+mode)
		}
		out.Containers[name] = pc
	}
	var n yaml.Node
	if err := n.Encode(out); err != nil {
		return nil, err
	}
	escapeNode(&n)
	return &n, nil
}

// escapeNode writes every "$" of the string values under n as "$$", so
// that the printed manifest, loaded again, does not read the variables
// the first load has already replaced.
func escapeNode(n *yaml.Node) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.ShortTag() == "!!str" {
			n.Value = escapeDollars(n.Value)
		}
	case yaml.MappingNode:
		// Keys are not interpolated, so they stay as they are.
		for i := 1; i < len(n.Content); i += 2 {
			escapeNode(n.Content[i])
		}
	default:
		for _, c := range n.Content {
			escapeNode(c)
		}
	}
}

// printedUser is the user as Load normalized it: numbers, or names found
// when the container starts, or "" for the image's user.
func printedUser(c *Container) string { return c.User }
