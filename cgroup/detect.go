package cgroup

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
)

// Mode is how a host lays out its cgroup hierarchies.
type Mode int

const (
	// Unified: cgroup v2 only, mounted at /sys/fs/cgroup.
	Unified Mode = iota + 1
	// Hybrid: v1 controller hierarchies, plus a cgroup2 hierarchy (usually
	// /sys/fs/cgroup/unified) that holds few or no controllers. The v1
	// hierarchies do the limiting.
	Hybrid
	// Legacy: cgroup v1 only.
	Legacy
)

func (m Mode) String() string {
	switch m {
	case Unified:
		return "unified"
	case Hybrid:
		return "hybrid"
	case Legacy:
		return "legacy"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// Host is what Probe found: the mode and where each hierarchy is mounted.
type Host struct {
	Mode Mode
	// V1 maps each mounted v1 controller to its mount point; controllers
	// mounted together share one. Empty in unified mode.
	V1 map[string]string
	// V2 is the cgroup2 mount point; empty in legacy mode.
	V2 string
}

// Driver returns the driver that sets limits on this host: v2 in unified
// mode, v1 otherwise.
func (h Host) Driver() Driver {
	if h.Mode == Unified {
		return NewV2(h.V2)
	}
	return NewV1(h.V1)
}

// String describes the host for diagnostics, e.g.
// "hybrid (v1: cpu=/sys/fs/cgroup/cpu memory=/sys/fs/cgroup/memory; v2: /sys/fs/cgroup/unified)".
func (h Host) String() string {
	var v1 []string
	for ctrl, m := range h.V1 {
		v1 = append(v1, ctrl+"="+m)
	}
	slices.Sort(v1)
	var parts []string
	if len(v1) > 0 {
		parts = append(parts, "v1: "+strings.Join(v1, " "))
	}
	if h.V2 != "" {
		parts = append(parts, "v2: "+h.V2)
	}
	return fmt.Sprintf("%s (%s)", h.Mode, strings.Join(parts, "; "))
}

// sysfsCgroup is where every distribution mounts the cgroup hierarchies.
const sysfsCgroup = "/sys/fs/cgroup"

// Probe finds how this host mounts its cgroups: statfs tells whether
// /sys/fs/cgroup itself is cgroup2 (unified); otherwise the v1 controllers'
// mount points come from /proc/self/mountinfo.
func Probe() (Host, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(sysfsCgroup, &st); err != nil {
		return Host{}, fmt.Errorf("cgroup: statfs %s: %w", sysfsCgroup, err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return Host{Mode: Unified, V2: sysfsCgroup}, nil
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return Host{}, fmt.Errorf("cgroup: %w", err)
	}
	defer f.Close()
	return parseMountinfo(f)
}

// Detect returns the driver for this host (see Probe and Host.Driver).
func Detect() (Driver, error) {
	h, err := Probe()
	if err != nil {
		return nil, err
	}
	return h.Driver(), nil
}

// isV1Controller tells the controllers a v1 mount's options can name from
// the other options (rw, xattr, name=systemd, ...).
func isV1Controller(opt string) bool {
	switch opt {
	case "cpuset", "cpu", "cpuacct", "blkio", "io", "memory", "devices", "freezer",
		"net_cls", "net_prio", "perf_event", "hugetlb", "pids", "rdma", "misc":
		return true
	}
	return false
}

// parseMountinfo reads the cgroup mounts of a mountinfo file (proc(5)):
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// field 5 is the mount point, and after the "-" come the filesystem type,
// the source and the superblock options, which name a v1 hierarchy's
// controllers. A host without v1 controllers is unified wherever its
// cgroup2 hierarchy is mounted.
func parseMountinfo(r io.Reader) (Host, error) {
	mounts, err := linux.ParseMountinfo(r)
	if err != nil {
		return Host{}, fmt.Errorf("cgroup: %w", err)
	}
	h := Host{V1: make(map[string]string)}
	for _, m := range mounts {
		switch m.FSType {
		case "cgroup2":
			if h.V2 == "" {
				h.V2 = m.Point
			}
		case "cgroup":
			for _, opt := range strings.Split(m.Super, ",") {
				if _, seen := h.V1[opt]; isV1Controller(opt) && !seen {
					h.V1[opt] = m.Point
				}
			}
		}
	}
	switch {
	case len(h.V1) > 0 && h.V2 != "":
		h.Mode = Hybrid
	case len(h.V1) > 0:
		h.Mode = Legacy
	case h.V2 != "":
		h.Mode = Unified
	default:
		return Host{}, errors.New("cgroup: no cgroup hierarchy is mounted")
	}
	return h, nil
}
