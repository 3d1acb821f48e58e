package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// composeTool runs a batch as one compose project with a service per
// container, on an image imported from the shared rootfs.
type composeTool struct {
	bin string
	// engine is the container engine the compose tool drives.
	engine string
	dir    string
	// env points the engine at the harness's own storage and settings.
	env    []string
	image  string
	prefix string
	// firewallChains is set when the CNI firewall plugin's iptables chains
	// were not there before the run: podman's networks make them on first
	// use and never remove them, so close does.
	firewallChains bool
	// libpodCgroups is the same for the cgroups podman's cgroupfs manager
	// makes for conmon.
	libpodCgroups bool
}

// libpodParent is the cgroup under which podman's cgroupfs manager puts
// conmon and the containers.
const libpodParent = "libpod_parent"

// podmanConf keeps podman's storage, state and networks under the harness's
// directory, and fits it to this kind of host: no systemd (cgroupfs, events
// to a file); no CAP_SYS_RESOURCE (podman's default nofile and nproc limits
// above the hard limits cannot be set); runc, because crun 1.8 refuses
// hybrid cgroup hosts.
const podmanConf = `[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "%[1]s/events.log"
tmp_dir = "%[1]s/tmp"
runtime = "runc"
[network]
network_config_dir = "%[1]s/networks"
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
`

const podmanStorage = `[storage]
driver = "overlay"
graphroot = "%[1]s/storage"
runroot = "%[1]s/run"
`

// newPodmanCompose prepares podman-compose with storage of its own and
// imports the rootfs as its image.
func newPodmanCompose(ctx context.Context, dir, rootfs, prefix string) (*composeTool, error) {
	c := &composeTool{bin: "podman-compose", engine: "podman", dir: dir, prefix: prefix, image: "localhost/" + prefix + "-busybox"}
	if err := c.lookPath(); err != nil {
		return nil, err
	}
	files := map[string]string{"containers.conf": podmanConf, "storage.conf": podmanStorage}
	for _, d := range []string{"tmp", "networks"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("podman: make %s: %w", d, err)
		}
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf(text, dir)), 0o644); err != nil {
			return nil, fmt.Errorf("podman: write %s: %w", name, err)
		}
	}
	c.env = []string{
		"CONTAINERS_CONF=" + filepath.Join(dir, "containers.conf"),
		"CONTAINERS_STORAGE_CONF=" + filepath.Join(dir, "storage.conf"),
	}
	c.firewallChains = exec.CommandContext(ctx, "iptables", "-S", "CNI-FORWARD").Run() != nil
	if _, err := os.Stat("/sys/fs/cgroup/memory/" + libpodParent); errors.Is(err, os.ErrNotExist) {
		c.libpodCgroups = true
	}
	// From here on, podman may have made storage the caller must reset.
	return c, c.importImage(ctx, rootfs)
}

// newDockerCompose needs a running Docker engine; it uses the engine's own
// storage, so it only adds an image and projects named after the harness.
func newDockerCompose(ctx context.Context, dir, rootfs, prefix string) (*composeTool, error) {
	c := &composeTool{bin: "docker-compose", engine: "docker", dir: dir, prefix: prefix, image: prefix + "-busybox"}
	if err := c.lookPath(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("docker: make directory: %w", err)
	}
	if err := command(ctx, filepath.Join(dir, "info.out"), nil, "docker", "info"); err != nil {
		return nil, fmt.Errorf("no Docker engine: %w", err)
	}
	// From here on, the image may exist and the caller must remove it.
	return c, c.importImage(ctx, rootfs)
}

func (c *composeTool) lookPath() error {
	for _, bin := range []string{c.bin, c.engine} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s is not installed (make bench-peers)", bin)
		}
	}
	return nil
}

func (c *composeTool) importImage(ctx context.Context, rootfs string) error {
	tarball := filepath.Join(c.dir, "rootfs.tar")
	out := filepath.Join(c.dir, "import.out")
	if err := command(ctx, out, nil, "tar", "-C", rootfs, "-cf", tarball, "."); err != nil {
		return err
	}
	defer os.Remove(tarball)
	return command(ctx, out, c.env, c.engine, "import", tarball, c.image)
}

func (c *composeTool) name() string { return c.bin + " up -d" }

func (c *composeTool) project(b *batch) string { return c.prefix + "-" + b.id }

func (c *composeTool) file(b *batch) string {
	return filepath.Join(c.dir, "projects", b.id, "compose.yaml")
}

// writeFile writes the batch's compose file; JSON is YAML, and spares
// quoting the command by hand.
func (c *composeTool) writeFile(b *batch) error {
	services := map[string]any{}
	for i := range b.n {
		services[b.containerName(i)] = map[string]any{"image": c.image, "command": b.argv}
	}
	raw, err := json.MarshalIndent(map[string]any{"services": services}, "", "  ")
	if err != nil {
		return fmt.Errorf("%s: encode compose file: %w", c.bin, err)
	}
	if err := os.MkdirAll(filepath.Dir(c.file(b)), 0o755); err != nil {
		return fmt.Errorf("%s: make project directory: %w", c.bin, err)
	}
	if err := os.WriteFile(c.file(b), raw, 0o644); err != nil {
		return fmt.Errorf("%s: write compose file: %w", c.bin, err)
	}
	return nil
}

func (c *composeTool) compose(ctx context.Context, b *batch, args ...string) error {
	out := filepath.Join(filepath.Dir(c.file(b)), "out")
	return command(ctx, out, c.env, c.bin, append([]string{"-f", c.file(b), "-p", c.project(b)}, args...)...)
}

func (c *composeTool) start(ctx context.Context, b *batch) error {
	if err := c.writeFile(b); err != nil {
		return err
	}
	return c.compose(ctx, b, "up", "-d")
}

// errPodmanWait is why podman's time to all finished is not measured.
var errPodmanWait = errors.New("not measured: run from the harness, podman notices a container's end some 20 s late " +
	"(`podman wait` polls its state database meanwhile; the container's conmon, orphaned to this VM's init, lingers as a zombie), " +
	"while `up -d` and `podman wait` of one container take 1.4 s from a shell: the number would measure that, not podman")

// run is `up -d` and then the engine's `wait` on every container, as
// `stack up -d` is followed by `stack ps` until all have ended.
func (c *composeTool) run(ctx context.Context, b *batch) error {
	if c.engine == "podman" {
		return errPodmanWait
	}
	if err := c.start(ctx, b); err != nil {
		return err
	}
	args := []string{"wait"}
	for i := range b.n {
		// Both compose tools name a service's first container so.
		args = append(args, c.project(b)+"_"+b.containerName(i)+"_1")
	}
	return command(ctx, filepath.Join(filepath.Dir(c.file(b)), "out"), c.env, c.engine, args...)
}

// down gives no grace period (-t 0): the containers' PID 1 ignores
// SIGTERM, and stack kills such a container at once too.
func (c *composeTool) down(ctx context.Context, b *batch) error {
	if err := c.compose(ctx, b, "down", "-t", "0"); err != nil {
		return err
	}
	// The compose tool leaves the project's default network behind, and
	// podman's CNI address allocator its state of the network.
	network := c.project(b) + "_default"
	out := filepath.Join(filepath.Dir(c.file(b)), "out")
	if err := command(ctx, out, c.env, c.engine, "network", "rm", "-f", network); err != nil && !strings.Contains(tail(out, 1), "no such network") {
		return err
	}
	if c.engine == "podman" {
		if err := os.RemoveAll(filepath.Join("/var/lib/cni/networks", network)); err != nil {
			return fmt.Errorf("remove address allocations of network %s: %w", network, err)
		}
	}
	return nil
}

// close removes the image and, for podman, all of its private storage and
// the firewall chains its networks made.
func (c *composeTool) close(ctx context.Context) error {
	out := filepath.Join(c.dir, "close.out")
	if c.engine != "podman" {
		return command(ctx, out, c.env, c.engine, "rmi", c.image)
	}
	if err := command(ctx, out, c.env, "podman", "system", "reset", "--force"); err != nil {
		return err
	}
	if c.libpodCgroups {
		if _, err := removeCgroupTrees(libpodParent); err != nil {
			return err
		}
	}
	if !c.firewallChains || exec.CommandContext(ctx, "iptables", "-S", "CNI-FORWARD").Run() != nil {
		return nil
	}
	// The jump into the chains goes first: a referenced chain cannot go.
	for _, args := range [][]string{
		{"-D", "FORWARD", "-m", "comment", "--comment", "CNI firewall plugin rules", "-j", "CNI-FORWARD"},
		{"-F", "CNI-FORWARD"}, {"-X", "CNI-FORWARD"}, {"-F", "CNI-ADMIN"}, {"-X", "CNI-ADMIN"},
	} {
		if err := command(ctx, out, nil, "iptables", args...); err != nil {
			return fmt.Errorf("remove the CNI firewall chains podman made: %w", err)
		}
	}
	return nil
}
