package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/cgroup"
	"github.com/stack-containers/stack/internal/busybox"
	"github.com/stack-containers/stack/internal/linux"
)

// config is what the command line sets.
type config struct {
	quick bool
	// stackBin is the stack binary under test.
	stackBin string
	// out is where the markdown report goes; empty: nowhere.
	out    string
	rounds int
	// sections limits the run to some of start, logs, oom, footprint.
	sections []string
	// ns are the container counts of the start and teardown benchmarks.
	ns []int
	// logBytes is what each log-writing container writes.
	logBytes int64
	oomRuns  int
	// footprintNs are the idle container counts of the footprint section.
	footprintNs []int
	// idle is how long idle CPU use is measured.
	idle time.Duration
}

func (c config) wants(section string) bool {
	return len(c.sections) == 0 || slices.Contains(c.sections, section)
}

// harness owns everything a run makes on the machine: a directory, a
// cgroup in every hierarchy, the process-event watcher and the systems.
type harness struct {
	cfg config
	// id is unique to this run; it names the cgroups, containers and
	// projects, so that nothing of another run or engineer is touched.
	id     string
	dir    string
	rootfs string
	// cgroupDir is the run's directory in the memory hierarchy.
	cgroupDir string
	watcher   *procWatcher

	floor   *floor
	goFloor *goFloor
	// net is the run's network namespace, for the rows with a network;
	// nil when it could not be made.
	net       *benchNetns
	floorErrs *os.File
	stack     *stackTool
	compose   []*composeTool
	// systems are the compared systems that passed their probe; the floor
	// comes first.
	systems []system
	skipped []skip
	// tmpfs is the mount point of a tmpfs the run made, if any.
	tmpfs string

	batches int
}

type skip struct{ System, Reason string }

func newHarness(ctx context.Context, cfg config) (*harness, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the benchmarks need root: they create namespaces, cgroups and mounts")
	}
	var raw [4]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fmt.Errorf("make run id: %w", err)
	}
	h := &harness{cfg: cfg, id: "stack-bench-" + hex.EncodeToString(raw[:])}
	dir, err := os.MkdirTemp("", h.id+"-")
	if err != nil {
		return nil, fmt.Errorf("make run directory: %w", err)
	}
	h.dir = dir
	h.rootfs = filepath.Join(dir, "rootfs")
	if err := busybox.Install(h.rootfs); err != nil {
		return h, fmt.Errorf("build busybox rootfs: %w", err)
	}
	if err := keepCgroups(h.id); err != nil {
		return h, err
	}
	cg, err := memoryCgroups(h.id)
	if err != nil {
		return h, err
	}
	h.cgroupDir = cg.dir
	if h.watcher, err = newProcWatcher(); err != nil {
		return h, err
	}
	if h.floorErrs, err = os.Create(filepath.Join(dir, "floor-errors")); err != nil {
		return h, fmt.Errorf("make the floors' error file: %w", err)
	}
	bin, err := buildGoFloor(ctx, dir)
	if err != nil {
		return h, err
	}
	h.goFloor = newGoFloor(bin, h.rootfs, cg, nil, h.floorErrs)
	h.floor = newFloor(h.rootfs, h.cgroupDir)
	h.systems = []system{h.goFloor, h.floor}
	h.addSystems(ctx)
	h.addNetworkRows(ctx, cg)
	return h, nil
}

// memoryCgroups is the run's cgroup in the memory hierarchy: v1's memory
// controller where it is mounted, else cgroup2's, with the memory
// controller enabled for the cgroups below.
func memoryCgroups(id string) (floorCgroups, error) {
	host, err := cgroup.Probe()
	if err != nil {
		return floorCgroups{}, err
	}
	if root := host.V1["memory"]; root != "" {
		return floorCgroups{dir: filepath.Join(root, id)}, nil
	}
	dir := filepath.Join(host.V2, id)
	if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+memory"), 0o644); err != nil {
		return floorCgroups{}, fmt.Errorf("enable the memory controller below %s: %w", dir, err)
	}
	return floorCgroups{dir: dir, v2: true}, nil
}

// addNetworkRows adds, in a network namespace of the run's own, the floor
// with a veth pair per container and stack with its own network: stack's
// network rows are compared with that floor.
func (h *harness) addNetworkRows(ctx context.Context, cg floorCgroups) {
	const label = "stack up -d (stack network)"
	net, err := newBenchNetns()
	if err != nil {
		h.skipped = append(h.skipped, skip{vethFloorName + ", " + label, err.Error()})
		return
	}
	h.net = net
	h.probe(ctx, vethFloorName, newGoFloor(h.goFloor.bin, h.rootfs, cg, net, h.floorErrs))
	if h.stack == nil {
		return
	}
	st, err := newStackTool(h.cfg.stackBin, filepath.Join(h.dir, "stack-net"), h.rootfs, h.id+"/stack", h.id)
	if err != nil {
		h.skipped = append(h.skipped, skip{label, err.Error()})
		return
	}
	st.label, st.network, st.net = " (stack network)", "", net
	h.probe(ctx, label, stackDetached{st})
}

// addSystems prepares each peer and probes it with one container of
// /bin/true; one that cannot run here is skipped with its reason.
func (h *harness) addSystems(ctx context.Context) {
	if st, err := newStackTool(h.cfg.stackBin, filepath.Join(h.dir, "stack"), h.rootfs, h.id+"/stack", h.id); err != nil {
		h.skipped = append(h.skipped, skip{"stack", err.Error()})
	} else {
		h.stack = st
		h.probe(ctx, "stack", stackDetached{st}, &stackForeground{stackTool: st, running: map[string]*exec.Cmd{}})
		h.addStackOnTmpfs(ctx)
	}
	for _, bin := range []string{"crun", "runc"} {
		o, err := newOCIRuntime(ctx, bin, filepath.Join(h.dir, bin), h.rootfs, h.id, h.id)
		if err != nil {
			h.skipped = append(h.skipped, skip{bin + " run", err.Error()})
			continue
		}
		h.probe(ctx, bin+" run", o)
	}
	makers := []struct {
		name string
		make func(ctx context.Context, dir, rootfs, prefix string) (*composeTool, error)
	}{{"docker-compose", newDockerCompose}, {"podman-compose", newPodmanCompose}}
	for _, m := range makers {
		if h.cfg.quick {
			h.skipped = append(h.skipped, skip{m.name + " up -d", "quick mode: it takes minutes; `make bench` runs it"})
			continue
		}
		c, err := m.make(ctx, filepath.Join(h.dir, m.name), h.rootfs, h.id)
		if c != nil {
			// Even half-prepared, its storage is the harness's to remove.
			h.compose = append(h.compose, c)
		}
		if err != nil {
			h.skipped = append(h.skipped, skip{m.name + " up -d", err.Error()})
			continue
		}
		h.probe(ctx, m.name+" up -d", c)
	}
}

// addStackOnTmpfs adds `stack up -d` with its state directory on a tmpfs:
// where the state directory's filesystem is slow to create files (ext4
// without a journal scans for an inode not recently deleted), the
// difference to the plain row is what that filesystem costs.
func (h *harness) addStackOnTmpfs(ctx context.Context) {
	const label = "stack up -d (state on tmpfs)"
	dir := filepath.Join(h.dir, "stack-tmpfs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		h.skipped = append(h.skipped, skip{label, err.Error()})
		return
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		h.skipped = append(h.skipped, skip{label, fmt.Sprintf("mount tmpfs on %s: %v", dir, err)})
		return
	}
	h.tmpfs = dir
	st, err := newStackTool(h.cfg.stackBin, dir, h.rootfs, h.id+"/stack", h.id)
	if err != nil {
		h.skipped = append(h.skipped, skip{label, err.Error()})
		return
	}
	st.label = " (state on tmpfs)"
	h.probe(ctx, label, stackDetached{st})
}

// probe adds the systems if one container starts and is taken down
// again, leaving nothing behind.
func (h *harness) probe(ctx context.Context, label string, systems ...system) {
	b := h.newBatch(1, sleepArgv())
	if _, _, err := measureStart(ctx, h.watcher, systems[0], b, 2*time.Minute); err != nil {
		h.skipped = append(h.skipped, skip{label, "cannot run a container here: " + err.Error()})
		return
	}
	h.systems = append(h.systems, systems...)
}

func (h *harness) newBatch(n int, argv []string) *batch {
	h.batches++
	return &batch{id: fmt.Sprintf("b%d", h.batches), n: n, argv: argv}
}

// close removes what the run made and reports what a system left behind:
// any cgroup, mount or file of the run still there is a leak.
func (h *harness) close(ctx context.Context) error {
	var errs error
	for _, c := range h.compose {
		if err := c.close(ctx); err != nil {
			errs = errors.Join(errs, err)
		}
	}
	if h.watcher != nil {
		if err := h.watcher.close(); err != nil {
			errs = errors.Join(errs, fmt.Errorf("close process events: %w", err))
		}
	}
	if h.net != nil {
		if left, err := h.net.links(); err != nil {
			errs = errors.Join(errs, err)
		} else if len(left) > 0 {
			errs = errors.Join(errs, fmt.Errorf("network devices left in the run's namespace: %s", strings.Join(left, ", ")))
		}
		h.net.close()
	}
	if h.floorErrs != nil {
		if msg := tail(h.floorErrs.Name(), 3); strings.TrimSpace(msg) != "" {
			errs = errors.Join(errs, fmt.Errorf("the floors' containers said: %s", msg))
		}
		h.floorErrs.Close()
	}
	if h.tmpfs != "" {
		if err := unix.Unmount(h.tmpfs, 0); err != nil {
			errs = errors.Join(errs, fmt.Errorf("unmount %s: %w", h.tmpfs, err))
		}
	}
	if leaks, err := mountsUnder(h.dir); err != nil {
		errs = errors.Join(errs, err)
	} else if len(leaks) > 0 {
		errs = errors.Join(errs, fmt.Errorf("left mounted: %s", strings.Join(leaks, ", ")))
	}
	if err := removeCgroups(h.id); err != nil {
		errs = errors.Join(errs, err)
	}
	if h.dir != "" {
		if err := os.RemoveAll(h.dir); err != nil {
			errs = errors.Join(errs, fmt.Errorf("remove run directory: %w", err))
		}
	}
	return errs
}

// keepName is a child cgroup that keeps the run's cgroup in being: stack's
// down removes every empty ancestor of its cgroups up to the hierarchy's
// root (cgroup.pruneUp), the run's own included, and the floor's mkdir
// would then fail.
const keepName = "keep"

// errPureV2 refuses a pure cgroup v2 host: the harness lays out the run's
// cgroups in v1 hierarchies (/sys/fs/cgroup/<controller>/<run>), the
// layout of the hybrid machines it measures on, and has no v2 layout.
var errPureV2 = errors.New("the harness needs cgroup v1 hierarchies (a hybrid or v1 host), and this host is pure cgroup v2")

// keepCgroups makes the run's cgroup, with its keep child, in every
// hierarchy.
func keepCgroups(id string) error {
	// On v2 the glob below would find every top-level cgroup instead.
	if pureCgroupV2() {
		return fmt.Errorf("bench: %w", errPureV2)
	}
	h, err := cgroup.Probe()
	if err != nil {
		return err
	}
	for _, root := range hierarchies(h) {
		dir := filepath.Join(root, id, keepName)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("make the run's cgroup %s: %w", dir, err)
		}
	}
	return nil
}

// hierarchies lists the roots of the host's cgroup hierarchies: each v1
// controller's, and the cgroup2 one, once each.
func hierarchies(h cgroup.Host) []string {
	var roots []string
	for _, root := range h.V1 {
		if !slices.Contains(roots, root) {
			roots = append(roots, root)
		}
	}
	if h.V2 != "" {
		roots = append(roots, h.V2)
	}
	slices.Sort(roots)
	return roots
}

// removeCgroups removes the run's cgroup in every hierarchy; any cgroup
// below it means a system did not clean up, and is reported. stack's
// cgroup parent (id/stack) and the keep child are the harness's to remove,
// like the run's own.
func removeCgroups(id string) error {
	removed, err := removeCgroupTrees(id)
	var leaks []string
	for _, dir := range removed {
		base := filepath.Base(dir)
		if filepath.Base(filepath.Dir(dir)) != id || (base != "stack" && base != keepName) {
			leaks = append(leaks, dir)
		}
	}
	if len(leaks) > 0 {
		err = errors.Join(err, fmt.Errorf("cgroups left behind: %s", strings.Join(leaks, ", ")))
	}
	return err
}

// removeCgroupTrees removes the cgroup name and everything below it in
// every hierarchy (with the cgroup package's retries while one is still
// busy), and returns the cgroups that were there below name.
func removeCgroupTrees(name string) ([]string, error) {
	h, err := cgroup.Probe()
	if err != nil {
		return nil, err
	}
	var below []string
	for _, root := range hierarchies(h) {
		top := filepath.Join(root, name)
		err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			if err == nil && d.IsDir() && p != top {
				below = append(below, p)
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("walk cgroup %s: %w", top, err)
		}
	}
	var errs error
	for _, root := range hierarchies(h) {
		errs = errors.Join(errs, cgroup.RemoveTree(filepath.Join(root, name)))
	}
	return below, errs
}

// mountsUnder lists the mount points at or below dir.
func mountsUnder(dir string) ([]string, error) {
	mounts, err := linux.Mounts()
	if err != nil {
		return nil, err
	}
	var found []string
	for _, m := range mounts {
		if m.Point == dir || strings.HasPrefix(m.Point, dir+"/") {
			found = append(found, m.Point)
		}
	}
	return found, nil
}
