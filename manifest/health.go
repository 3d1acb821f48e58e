package manifest

import (
	"slices"
	"time"

	"go.yaml.in/yaml/v3"
)

// Health checks and the conditions of depends_on (SPEC.md, "Health
// checks"), with Compose's defaults.
const (
	defaultHealthInterval      = 30 * time.Second
	defaultHealthTimeout       = 30 * time.Second
	defaultHealthRetries       = 3
	defaultHealthStartInterval = 5 * time.Second
)

// Healthcheck is a container's health check.
type Healthcheck struct {
	// Test is the command run inside the container: a CMD's words, or
	// /bin/sh -c and a CMD-SHELL's string.
	Test []string
	// Disabled is test: [NONE]: no check, not even an image's.
	Disabled      bool
	Interval      time.Duration
	Timeout       time.Duration
	Retries       int
	StartPeriod   time.Duration
	StartInterval time.Duration
}

// Condition is what a container waits for of a dependency before it starts.
type Condition string

// The conditions of depends_on.
const (
	ConditionStarted   Condition = "service_started"
	ConditionHealthy   Condition = "service_healthy"
	ConditionCompleted Condition = "service_completed_successfully"
)

var conditions = []string{string(ConditionStarted), string(ConditionHealthy), string(ConditionCompleted)}

var healthcheckFields = []string{"test", "interval", "timeout", "retries", "start_period", "start_interval"}

func (d *decoder) healthcheck(n *yaml.Node, path string) *Healthcheck {
	m := d.expect(n, path, yaml.MappingNode, "a mapping of health check fields")
	if m == nil {
		return nil
	}
	h := &Healthcheck{
		Interval: defaultHealthInterval, Timeout: defaultHealthTimeout,
		Retries: defaultHealthRetries, StartInterval: defaultHealthStartInterval,
	}
	f := d.fields(m, path, healthcheckFields)
	test, ok := f["test"]
	if !ok {
		d.errorf(m, path, "test is required")
	} else {
		d.healthTest(h, test, join(path, "test"))
	}
	for field, dst := range map[string]*time.Duration{
		"interval": &h.Interval, "timeout": &h.Timeout,
		"start_period": &h.StartPeriod, "start_interval": &h.StartInterval,
	} {
		n, ok := f[field]
		if !ok {
			continue
		}
		v, ok := d.duration(n, join(path, field))
		if !ok {
			continue
		}
		// A zero interval or timeout would run checks back to back or
		// kill each at once; start_period may be 0.
		if v == 0 && field != "start_period" {
			d.errorf(n, join(path, field), "must be more than 0")
			continue
		}
		*dst = v
	}
	if n, ok := f["retries"]; ok {
		if v, ok := d.integer(n, join(path, "retries")); ok {
			if v < 1 || v > 1<<20 {
				d.errorf(n, join(path, "retries"), "must be from 1 to %d, not %d", 1<<20, v)
			} else {
				h.Retries = int(v)
			}
		}
	}
	return h
}

// healthTest decodes test: ["CMD", args...], ["CMD-SHELL", command],
// ["NONE"], or a string, which is CMD-SHELL's.
func (d *decoder) healthTest(h *Healthcheck, n *yaml.Node, path string) {
	n = d.resolve(n)
	if n == nil {
		return
	}
	if isString(n) {
		if n.Value == "" {
			d.errorf(n, path, "must not be empty")
			return
		}
		h.Test = []string{"/bin/sh", "-c", n.Value}
		return
	}
	seq := d.expect(n, path, yaml.SequenceNode, `a list ["CMD", ...], ["CMD-SHELL", "command"] or ["NONE"], or a string`)
	if seq == nil {
		return
	}
	var words []string
	for i, item := range seq.Content {
		if s, ok := d.str(item, index(path, i)); ok {
			words = append(words, s)
		}
	}
	if len(words) != len(seq.Content) {
		return
	}
	switch {
	case len(words) == 0:
		d.errorf(n, path, `must not be empty: use ["CMD", ...], ["CMD-SHELL", "command"] or ["NONE"]`)
	case words[0] == "NONE":
		if len(words) > 1 {
			d.errorf(n, path, `["NONE"] takes nothing after it`)
		}
		h.Disabled = true
	case words[0] == "CMD":
		if len(words) < 2 || words[1] == "" {
			d.errorf(n, path, `["CMD", ...] needs the program to run after "CMD"`)
			return
		}
		h.Test = words[1:]
	case words[0] == "CMD-SHELL":
		if len(words) != 2 || words[1] == "" {
			d.errorf(n, path, `["CMD-SHELL", "command"] takes exactly one command string`)
			return
		}
		h.Test = []string{"/bin/sh", "-c", words[1]}
	default:
		d.errorf(seq.Content[0], index(path, 0), `must be "CMD", "CMD-SHELL" or "NONE", not %q`, words[0])
	}
}

// dependsOn decodes depends_on: a list of names (each service_started),
// or a mapping of names to {condition: ...}.
func (d *decoder) dependsOn(e *entry, n *yaml.Node, path string) {
	n = d.resolve(n)
	if n == nil {
		return
	}
	if n.Kind != yaml.MappingNode {
		e.c.DependsOn, e.dependsOn = d.names(n, path)
		return
	}
	e.dependsOn = map[string]*yaml.Node{}
	for _, p := range d.pairs(n, path) {
		name, p2 := p.key.Value, join(path, p.key.Value)
		e.dependsOn[name] = p.key
		e.c.DependsOn = append(e.c.DependsOn, name)
		cond := ConditionStarted
		if v := d.expect(p.value, p2, yaml.MappingNode, "a mapping with condition"); v != nil {
			f := d.fields(v, p2, []string{"condition"})
			if cn, ok := f["condition"]; ok {
				if s, ok := d.str(cn, join(p2, "condition")); ok {
					if !slices.Contains(conditions, s) {
						d.errorf(cn, join(p2, "condition"), "must be one of %v, not %q", conditions, s)
					}
					cond = Condition(s)
				}
			}
		}
		if e.c.Conditions == nil {
			e.c.Conditions = map[string]Condition{}
		}
		e.c.Conditions[name] = cond
	}
	slices.Sort(e.c.DependsOn)
}

// checkConditions reports a service_healthy condition on a container
// without a health check: it could never be met. A container of an image
// without one in the manifest may get the image's, which only a start
// knows: the supervisor refuses it then.
func (d *decoder) checkConditions(e *entry, byName map[string]*entry) {
	for target, cond := range e.c.Conditions {
		t := byName[target]
		if cond != ConditionHealthy || t == nil {
			continue
		}
		hc := t.c.Healthcheck
		if hc == nil && t.c.Image != "" {
			continue
		}
		if hc == nil || hc.Disabled {
			d.errorf(e.dependsOn[target], join(join(e.path, "depends_on"), target),
				"condition service_healthy: %q has no healthcheck, so it can never be healthy", target)
		}
	}
}

// printedHealthcheck is how `stack config` writes a health check.
type printedHealthcheck struct {
	Test          []string `yaml:"test"`
	Interval      string   `yaml:"interval"`
	Timeout       string   `yaml:"timeout"`
	Retries       int      `yaml:"retries"`
	StartPeriod   string   `yaml:"start_period"`
	StartInterval string   `yaml:"start_interval"`
}

func printHealthcheck(h *Healthcheck) *printedHealthcheck {
	if h == nil {
		return nil
	}
	p := &printedHealthcheck{
		Test:          append([]string{"CMD"}, h.Test...),
		Interval:      h.Interval.String(),
		Timeout:       h.Timeout.String(),
		Retries:       h.Retries,
		StartPeriod:   h.StartPeriod.String(),
		StartInterval: h.StartInterval.String(),
	}
	if h.Disabled {
		p.Test = []string{"NONE"}
	}
	return p
}

// printConditions writes depends_on as a mapping when a condition is
// other than service_started, and as a list otherwise.
func printConditions(c *Container) any {
	if len(c.DependsOn) == 0 {
		return nil
	}
	plain := true
	for _, cond := range c.Conditions {
		plain = plain && cond == ConditionStarted
	}
	if plain {
		return c.DependsOn
	}
	out := map[string]map[string]string{}
	for _, name := range c.DependsOn {
		cond := c.Conditions[name]
		if cond == "" {
			cond = ConditionStarted
		}
		out[name] = map[string]string{"condition": string(cond)}
	}
	return out
}
