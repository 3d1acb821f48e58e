package manifest

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stack-containers/stack/image"
	"github.com/stack-containers/stack/seccomp"
)

// Defaults SPEC.md gives for a container.
const (
	defaultStopSignal  = syscall.SIGTERM
	defaultStopTimeout = 10 * time.Second
	defaultBackoff     = 100 * time.Millisecond
	defaultMaxBackoff  = 10 * time.Second
)

// canonicalNamespaces is every namespace in the order Stack stores them.
var canonicalNamespaces = []Namespace{NamespacePID, NamespaceMount, NamespaceUTS, NamespaceIPC, NamespaceNet, NamespaceUser, NamespaceCgroup}

// defaultNamespaces are created for a container that lists none.
var defaultNamespaces = []Namespace{NamespacePID, NamespaceMount, NamespaceUTS, NamespaceIPC, NamespaceNet}

// joinable are the namespaces a container may share with another.
var joinable = []Namespace{NamespaceNet, NamespaceIPC, NamespaceUTS}

// The limits a container may ask for, between what the kernel can honour
// and what a container's init needs to start at all.
const (
	// minCPUs is the smallest quota the kernel takes: 1ms per 100ms period.
	minCPUs = 0.01
	// maxCPUs is the largest whole number of cores under the kernel's
	// largest CFS quota, 2^44-1 µs (max_cfs_runtime) per 100ms period.
	maxCPUs = 175_921_860
	// minMemory is the smallest memory limit a container's init starts
	// under with room to spare: the init (stack's own binary, before it
	// execs the program) is charged to the container's cgroup, and under
	// a few hundred KiB the kernel kills it before the program runs.
	minMemory = 1 << 20
	// maxMemory is the largest limit the kernel takes as a limit: above
	// it (LONG_MAX rounded down to a page) it means no limit at all.
	maxMemory = math.MaxInt64 &^ (4096 - 1)
	// maxPids is PID_MAX_LIMIT, the most pids.max takes.
	maxPids = 4 << 20
	// maxArgLen is execve's limit on one argument or KEY=VALUE string
	// (MAX_ARG_STRLEN, 32 pages), without its terminating NUL.
	maxArgLen = 32*4096 - 1
)

// containerFields are the keys of a container definition.
var containerFields = []string{
	"rootfs", "image", "entrypoint", "command", "pull_policy", "env", "workdir", "hostname",
	"user", "namespaces", "join", "memory", "cpus", "pids", "restart", "depends_on",
	"stop_signal", "stop_timeout", "read_only", "mounts", "healthcheck", "network", "ports",
	"cap_add", "cap_drop", "seccomp",
}

// entry is a decoded container with the nodes that checks spanning
// containers need to place their problems.
type entry struct {
	c    *Container
	key  *yaml.Node
	path string
	// namespaces holds the node of every namespace listed explicitly.
	namespaces map[Namespace]*yaml.Node
	join       map[Namespace]*yaml.Node
	dependsOn  map[string]*yaml.Node
	hostname   *yaml.Node
	network    *yaml.Node
	ports      *yaml.Node
}

// container decodes one container definition; dir is the manifest's
// directory, against which relative host paths are resolved.
func (d *decoder) container(key, value *yaml.Node, dir string) *entry {
	name := key.Value
	path := join("containers", name)
	if err := ValidateName(name); err != nil {
		d.errorf(key, path, "%v", err)
	}
	e := &entry{
		c: &Container{Name: name, Workdir: "/", StopSignal: defaultStopSignal, StopTimeout: defaultStopTimeout,
			Seccomp: SeccompDefault, SeccompProfile: seccomp.Default()},
		key:  key,
		path: path,
	}
	e.c.Restart = RestartPolicy{Policy: RestartNo, Backoff: defaultBackoff, MaxBackoff: defaultMaxBackoff}
	m := d.expect(value, path, yaml.MappingNode, "a mapping of container fields")
	if m == nil {
		// Still an entry, so that references to the container do not
		// add "no container" problems to the one reported here.
		return e
	}
	f := d.fields(m, path, containerFields)
	_, hasRootfs := f["rootfs"]
	_, hasImage := f["image"]
	switch {
	case hasRootfs && hasImage:
		d.errorf(f["image"], join(path, "image"), "rootfs and image exclude each other: keep one")
	case !hasRootfs && !hasImage:
		d.errorf(key, path, "rootfs or image is required")
	case hasRootfs:
		e.c.User = "0:0"
		// An image supplies its own command, a rootfs has none.
		if _, ok := f["command"]; !ok {
			d.errorf(key, path, "command is required with rootfs")
		}
		for _, field := range []string{"entrypoint", "pull_policy"} {
			if n, ok := f[field]; ok {
				d.errorf(n, join(path, field), "%s needs image, not rootfs", field)
			}
		}
	case hasImage:
		// The image's working directory and user, unless set.
		e.c.Workdir = ""
		e.c.PullPolicy = PullMissing
	}
	for _, field := range containerFields {
		if n, ok := f[field]; ok {
			d.containerField(e, field, n, join(path, field), dir)
		}
	}
	return e
}

// containerField decodes one field of a container into e.
func (d *decoder) containerField(e *entry, field string, n *yaml.Node, path, dir string) {
	c := e.c
	switch field {
	case "rootfs":
		c.Rootfs = d.rootfs(n, path, dir)
	case "image":
		c.Image = d.image(n, path, dir)
	case "entrypoint":
		c.Entrypoint = d.command(n, path)
	case "pull_policy":
		if s, ok := d.str(n, path); ok {
			switch p := PullPolicy(s); p {
			case PullMissing, PullAlways, PullNever:
				c.PullPolicy = p
			default:
				d.errorf(n, path, "unknown pull policy %q (missing, always or never)", s)
			}
		}
	case "command":
		c.Command = d.command(n, path)
	case "env":
		c.Env = d.env(n, path)
	case "workdir":
		if s, ok := d.str(n, path); ok {
			if p, err := cleanAbs(s); err != nil {
				d.errorf(n, path, "%v", err)
			} else {
				c.Workdir = p
			}
		}
	case "hostname":
		if s, ok := d.str(n, path); ok {
			if err := checkHostname(s); err != nil {
				d.errorf(n, path, "%v", err)
			}
			c.Hostname, e.hostname = s, n
		}
	case "user":
		d.user(c, n, path)
	case "namespaces":
		c.Namespaces, e.namespaces = d.namespaces(n, path)
	case "join":
		c.Join, e.join = d.join(n, path)
	case "network":
		c.Network, e.network = d.networkMode(n, path), n
	case "ports":
		c.Ports, e.ports = d.ports(n, path), n
	case "memory":
		c.Memory = d.memory(n, path)
	case "cpus":
		c.CPUs = d.cpus(n, path)
	case "pids":
		if v, ok := d.integer(n, path); ok {
			if v < 1 || v > maxPids {
				d.errorf(n, path, "must be from 1 to %d (the kernel's largest pid limit), not %d", maxPids, v)
			}
			c.Pids = v
		}
	case "restart":
		d.restart(&c.Restart, n, path)
	case "depends_on":
		d.dependsOn(e, n, path)
	case "healthcheck":
		c.Healthcheck = d.healthcheck(n, path)
	case "stop_signal":
		c.StopSignal = d.signal(n, path)
	case "stop_timeout":
		if v, ok := d.duration(n, path); ok {
			c.StopTimeout = v
		}
	case "read_only":
		c.ReadOnly = d.boolean(n, path)
	case "mounts":
		c.Mounts = d.mounts(n, path, dir)
	case "cap_add":
		c.CapAdd = d.capabilities(n, path)
	case "cap_drop":
		c.CapDrop = d.capabilities(n, path)
	case "seccomp":
		d.seccomp(c, n, path, dir)
	}
}

// hostPath resolves a path from the manifest against its directory.
func hostPath(p, dir string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

// statError words a failed stat without the absolute path, which the user
// did not write and which would differ from machine to machine.
func statError(what, p string, err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Sprintf("%s %q does not exist", what, p)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Sprintf("%s %q: %v", what, p, err)
}

func (d *decoder) rootfs(n *yaml.Node, path, dir string) string {
	s, ok := d.str(n, path)
	if !ok {
		return ""
	}
	if s == "" || strings.ContainsRune(s, 0) {
		d.errorf(n, path, "must be a path to a directory or a .tar, .tar.gz or .tgz archive")
		return ""
	}
	abs := hostPath(s, dir)
	fi, err := os.Stat(abs)
	switch {
	case err != nil:
		d.errorf(n, path, "%s", statError("rootfs", s, err))
	case fi.IsDir():
	case !fi.Mode().IsRegular() || !image.IsArchive(abs):
		d.errorf(n, path, "rootfs %q is neither a directory nor a .tar, .tar.gz or .tgz archive", s)
	}
	return abs
}

// image checks an image: source and returns it as image.Source writes it,
// Docker's defaults filled in and paths absolute.
func (d *decoder) image(n *yaml.Node, path, dir string) string {
	s, ok := d.str(n, path)
	if !ok {
		return ""
	}
	src, err := image.ParseSource(s, dir)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return ""
	}
	return src.String()
}

func (d *decoder) command(n *yaml.Node, path string) []string {
	n = d.resolve(n)
	if n == nil {
		return nil
	}
	var words []string
	switch {
	case isString(n):
		w, err := splitWords(n.Value)
		if err != nil {
			d.errorf(n, path, "command %v", err)
			return nil
		}
		words = w
	case n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			if s, ok := d.str(item, index(path, i)); ok {
				words = append(words, s)
			}
		}
	default:
		d.errorf(n, path, "must be a list of words or a string, not %s", kindName(n))
		return nil
	}
	switch {
	case len(words) == 0:
		d.errorf(n, path, "must not be empty")
	case words[0] == "":
		d.errorf(n, path, "the program to run is an empty string")
	}
	for _, w := range words {
		if strings.ContainsRune(w, 0) {
			d.errorf(n, path, "an argument contains a NUL byte, which execve cannot pass")
			break
		}
		if len(w) > maxArgLen {
			d.errorf(n, path, "an argument is %d bytes; execve takes at most %d (128 KiB) per argument", len(w), maxArgLen)
			break
		}
	}
	return words
}

func (d *decoder) env(n *yaml.Node, path string) map[string]string {
	n = d.resolve(n)
	if n == nil {
		return nil
	}
	env := map[string]string{}
	set := func(k *yaml.Node, p, name, value string, hasValue bool) {
		switch {
		case !envNameRE().MatchString(name):
			d.errorf(k, p, "%q is not a valid variable name: letters, digits and '_', not starting with a digit", name)
			return
		case !hasValue:
			d.errorf(k, p, "has no value; write %s=\"\" for an empty one", name)
		case strings.ContainsRune(value, 0):
			d.errorf(k, p, "the value contains a NUL byte, which execve cannot pass")
		case len(name)+1+len(value) > maxArgLen:
			d.errorf(k, p, "%s=VALUE is %d bytes; execve takes at most %d (128 KiB) per variable", name, len(name)+1+len(value), maxArgLen)
		}
		if _, dup := env[name]; dup {
			d.errorf(k, p, "set twice")
		}
		env[name] = value
	}
	switch n.Kind {
	case yaml.MappingNode:
		for _, p := range d.pairs(n, path) {
			v := d.resolve(p.value)
			if v == nil {
				break
			}
			if v.Kind != yaml.ScalarNode || v.ShortTag() == "!!null" {
				d.errorf(v, join(path, p.key.Value), "must be a string, number or boolean, not %s", kindName(v))
				continue
			}
			set(p.key, join(path, p.key.Value), p.key.Value, v.Value, true)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			s, ok := d.str(item, index(path, i))
			if !ok {
				continue
			}
			name, value, hasValue := strings.Cut(s, "=")
			set(d.resolve(item), index(path, i), name, value, hasValue)
		}
	default:
		d.errorf(n, path, "must be a mapping or a list of KEY=VALUE, not %s", kindName(n))
		return nil
	}
	if len(env) == 0 {
		return nil
	}
	return env
}

func (d *decoder) user(c *Container, n *yaml.Node, path string) {
	n = d.resolve(n)
	if n == nil {
		return
	}
	if isNumber(n) {
		v, ok := d.integer(n, path)
		if !ok {
			return
		}
		if v < 0 || v > maxID {
			d.errorf(n, path, "uid %d is out of range 0..%d", v, uint32(maxID))
			return
		}
		c.UID, c.User = uint32(v), strconv.FormatInt(v, 10)
		return
	}
	s, ok := d.str(n, path)
	if !ok {
		return
	}
	if err := checkUserNames(s); err == nil {
		// Names are looked up in the container's own /etc/passwd and
		// /etc/group when it starts.
		c.User = s
		return
	}
	uid, gid, err := parseUser(s)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return
	}
	c.UID, c.GID, c.User = uid, gid, strconv.FormatUint(uint64(uid), 10)
	if strings.Contains(s, ":") {
		c.User += ":" + strconv.FormatUint(uint64(gid), 10)
	}
}

// namespaces decodes an explicit namespace list and returns it in
// canonical order, with the node of each entry.
func (d *decoder) namespaces(n *yaml.Node, path string) ([]Namespace, map[Namespace]*yaml.Node) {
	seq := d.expect(n, path, yaml.SequenceNode, "a list of namespaces")
	if seq == nil {
		return nil, nil
	}
	given := map[Namespace]*yaml.Node{}
	for i, item := range seq.Content {
		s, ok := d.str(item, index(path, i))
		if !ok {
			continue
		}
		ns := Namespace(s)
		switch {
		case !slices.Contains(canonicalNamespaces, ns):
			d.errorf(item, index(path, i), "unknown namespace %q: use pid, mount, uts, ipc, net, user or cgroup", s)
		case given[ns] != nil:
			d.errorf(item, index(path, i), "namespace %q is listed twice", s)
		case ns == NamespaceUser:
			// Refused rather than pretending: the only map stack can make
			// today is the identity, under which root in the container is
			// root on the host for every file it can reach.
			d.errorf(item, index(path, i), "namespace user is not supported yet: stack cannot map the container's root to an unprivileged host range, and an identity map would isolate nothing")
		default:
			given[ns] = d.resolve(item)
		}
	}
	if given[NamespaceMount] == nil {
		d.errorf(seq, path, "must include mount: the container's rootfs lives in its own mount namespace")
	}
	var out []Namespace
	for _, ns := range canonicalNamespaces {
		if given[ns] != nil {
			out = append(out, ns)
		}
	}
	return out, given
}

func (d *decoder) join(n *yaml.Node, path string) (map[Namespace]string, map[Namespace]*yaml.Node) {
	m := d.expect(n, path, yaml.MappingNode, "a mapping of namespace to container")
	if m == nil {
		return nil, nil
	}
	out := map[Namespace]string{}
	nodes := map[Namespace]*yaml.Node{}
	for _, p := range d.pairs(m, path) {
		ns, fp := Namespace(p.key.Value), join(path, p.key.Value)
		if !slices.Contains(joinable, ns) {
			d.errorf(p.key, fp, "cannot join namespace %q: only net, ipc and uts can be shared", p.key.Value)
			continue
		}
		if target, ok := d.str(p.value, fp); ok {
			out[ns], nodes[ns] = target, d.resolve(p.value)
		}
	}
	if len(out) == 0 {
		return nil, nodes
	}
	return out, nodes
}

func (d *decoder) memory(n *yaml.Node, path string) int64 {
	n = d.resolve(n)
	if n == nil {
		return 0
	}
	var v int64
	switch {
	case isNumber(n):
		i, ok := d.integer(n, path)
		if !ok {
			return 0
		}
		v = i
	case isString(n):
		s, err := parseSize(n.Value)
		if err != nil {
			d.errorf(n, path, "%v", err)
			return 0
		}
		v = s
	default:
		d.errorf(n, path, "must be bytes or a size like 64M, not %s", kindName(n))
		return 0
	}
	if v < minMemory || v > maxMemory {
		d.errorf(n, path, "must be from %s (the least a container starts under) to %s (the kernel's largest limit), not %s",
			"1M", "8589934591G", n.Value)
	}
	return v
}

func (d *decoder) cpus(n *yaml.Node, path string) float64 {
	n = d.resolve(n)
	if n == nil {
		return 0
	}
	var v float64
	if !isNumber(n) || n.Decode(&v) != nil {
		d.errorf(n, path, "must be a number of cores like 0.5, not %s", kindName(n))
		return 0
	}
	if math.IsNaN(v) || math.IsInf(v, 0) || v < minCPUs || v > maxCPUs {
		d.errorf(n, path, "must be a number of cores from %v to %d (the kernel's smallest and largest quota), not %s",
			minCPUs, maxCPUs, n.Value)
	}
	return v
}

// isNumber reports whether n is a numeric scalar.
func isNumber(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float")
}

// integer decodes a whole number that fits in int64. A float with no
// fraction (1e3, 64.0) counts, as it does for JSON Schema's "integer".
func (d *decoder) integer(n *yaml.Node, path string) (int64, bool) {
	n = d.resolve(n)
	if n == nil {
		return 0, false
	}
	if !isNumber(n) {
		d.errorf(n, path, "must be an integer, not %s", kindName(n))
		return 0, false
	}
	var v int64
	if n.ShortTag() == "!!int" {
		if err := n.Decode(&v); err != nil {
			d.errorf(n, path, "%s is out of range", n.Value)
			return 0, false
		}
		return v, true
	}
	var f float64
	if err := n.Decode(&f); err != nil || f != math.Trunc(f) {
		d.errorf(n, path, "must be an integer, not %s", n.Value)
		return 0, false
	}
	// 2^63 is the first float64 outside int64.
	if f < math.MinInt64 || f >= math.MaxInt64 {
		d.errorf(n, path, "%s is out of range", n.Value)
		return 0, false
	}
	return int64(f), true
}

func (d *decoder) boolean(n *yaml.Node, path string) bool {
	n = d.resolve(n)
	if n == nil {
		return false
	}
	var v bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&v) != nil {
		d.errorf(n, path, "must be true or false, not %s", kindName(n))
	}
	return v
}

func (d *decoder) duration(n *yaml.Node, path string) (time.Duration, bool) {
	n = d.resolve(n)
	if n == nil {
		return 0, false
	}
	if !isString(n) {
		d.errorf(n, path, "must be a duration with a unit like 10s or 500ms, not %s", kindName(n))
		return 0, false
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return 0, false
	}
	return v, true
}

func (d *decoder) signal(n *yaml.Node, path string) syscall.Signal {
	n = d.resolve(n)
	if n == nil {
		return defaultStopSignal
	}
	var (
		sig syscall.Signal
		err error
	)
	switch {
	case isString(n):
		sig, err = parseSignalName(n.Value)
	case isNumber(n):
		v, ok := d.integer(n, path)
		if !ok {
			return defaultStopSignal
		}
		sig, err = checkSignalNumber(v)
	default:
		err = fmt.Errorf("must be a signal name like SIGTERM or a number, not %s", kindName(n))
	}
	if err != nil {
		d.errorf(n, path, "%v", err)
		return defaultStopSignal
	}
	return sig
}

// names decodes a list of container names, sorted, with the node of each.
func (d *decoder) names(n *yaml.Node, path string) ([]string, map[string]*yaml.Node) {
	seq := d.expect(n, path, yaml.SequenceNode, "a list of container names")
	if seq == nil {
		return nil, nil
	}
	nodes := map[string]*yaml.Node{}
	for i, item := range seq.Content {
		s, ok := d.str(item, index(path, i))
		if !ok {
			continue
		}
		if nodes[s] != nil {
			d.errorf(item, index(path, i), "%q is listed twice", s)
			continue
		}
		nodes[s] = d.resolve(item)
	}
	if len(nodes) == 0 {
		return nil, nodes
	}
	out := make([]string, 0, len(nodes))
	for s := range nodes {
		out = append(out, s)
	}
	slices.Sort(out)
	return out, nodes
}
