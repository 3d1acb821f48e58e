package manifest

import (
	"slices"

	"go.yaml.in/yaml/v3"
)

var policies = []Policy{RestartNo, RestartOnFailure, RestartOnOOM, RestartAlways}

// unlessStopped is Compose's policy that stack reads as always.
const unlessStopped = "unless-stopped"

// restart decodes `restart`: a policy name, or a mapping with policy,
// max_retries, backoff and max_backoff. r holds the defaults on entry.
func (d *decoder) restart(r *RestartPolicy, n *yaml.Node, path string) {
	n = d.resolve(n)
	if n == nil {
		return
	}
	switch {
	case n.Kind == yaml.ScalarNode:
		d.policy(r, n, path)
	case n.Kind == yaml.MappingNode:
		d.restartObject(r, n, path)
	default:
		d.errorf(n, path, "must be a policy name or a mapping with policy, not %s", kindName(n))
	}
}

func (d *decoder) policy(r *RestartPolicy, n *yaml.Node, path string) {
	n = d.resolve(n)
	if n == nil {
		return
	}
	if !isString(n) {
		d.errorf(n, path, "must be no, on-failure, on-oom or always, not %s", kindName(n))
		return
	}
	s := n.Value
	if s == unlessStopped {
		// stack has no daemon that outlives a reboot, so the two do not
		// differ; Compose files use both.
		s = string(RestartAlways)
	}
	if !slices.Contains(policies, Policy(s)) {
		d.errorf(n, path, "unknown restart policy %q: use no, on-failure, on-oom or always", s)
		return
	}
	r.Policy = Policy(s)
}

func (d *decoder) restartObject(r *RestartPolicy, n *yaml.Node, path string) {
	f := d.fields(n, path, []string{"policy", "max_retries", "backoff", "max_backoff"})
	if p, ok := f["policy"]; ok {
		d.policy(r, p, join(path, "policy"))
	} else {
		d.errorf(n, path, "policy is required")
	}
	if v, ok := f["max_retries"]; ok {
		if i, ok := d.integer(v, join(path, "max_retries")); ok {
			if i < 0 || i > int64(maxRetries) {
				d.errorf(v, join(path, "max_retries"), "must be between 0 (unlimited) and %d, not %d", maxRetries, i)
			}
			r.MaxRetries = int(i)
		}
	}
	backoffNode, hasBackoff := f["backoff"]
	if hasBackoff {
		// 0s is allowed: restart at once, every time (the delay doubles
		// from nothing).
		if v, ok := d.duration(backoffNode, join(path, "backoff")); ok {
			r.Backoff = v
		}
	}
	if v, ok := f["max_backoff"]; ok {
		if m, ok := d.duration(v, join(path, "max_backoff")); ok {
			if m == 0 {
				d.errorf(v, join(path, "max_backoff"), "must be longer than 0s")
			}
			r.MaxBackoff = m
			if hasBackoff && r.Backoff > m {
				d.errorf(v, join(path, "max_backoff"), "%s is shorter than backoff %s", m, r.Backoff)
			}
		}
	} else {
		// A first delay above the default cap raises the cap rather than
		// being an error the user did not write.
		r.MaxBackoff = max(r.MaxBackoff, r.Backoff)
	}
}

// maxRetries keeps the count in an int on every platform.
const maxRetries = 1<<31 - 1
