package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// machine describes where the numbers were taken; they mean little without.
type machine struct {
	Date     time.Time
	Kernel   string
	CPU      string
	Cores    int
	Memory   string
	Cgroups  string
	Go       string
	Versions []version
}

type version struct{ Tool, Version string }

func describeMachine(ctx context.Context, stackBin string) machine {
	m := machine{Date: time.Now().UTC(), Cores: runtime.NumCPU(), Go: runtime.Version()}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:])
	}
	m.CPU = procField("/proc/cpuinfo", "model name")
	m.Memory = procField("/proc/meminfo", "MemTotal")
	if kb, err := strconv.ParseInt(strings.TrimSuffix(m.Memory, " kB"), 10, 64); err == nil {
		m.Memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
	}
	m.Cgroups = cgroupMode()
	tools := []struct {
		name string
		argv []string
	}{
		{"stack", []string{stackBin, "version"}},
		{"runc", []string{"runc", "--version"}},
		{"crun", []string{"crun", "--version"}},
		{"podman", []string{"podman", "--version"}},
		{"podman-compose", []string{"podman-compose", "--version"}},
		{"docker-compose", []string{"docker-compose", "version", "--short"}},
		{"util-linux unshare", []string{"unshare", "--version"}},
	}
	for _, t := range tools {
		v := "not installed"
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		out, err := exec.CommandContext(ctx, t.argv[0], t.argv[1:]...).CombinedOutput()
		cancel()
		if err == nil {
			v = versionLine(string(out), t.name)
		} else if _, lerr := exec.LookPath(t.argv[0]); lerr == nil {
			v = "unknown (" + err.Error() + ")"
		}
		m.Versions = append(m.Versions, version{t.name, v})
	}
	return m
}

// versionLine picks the line that gives the tool's version among what it
// prints: podman-compose prints podman's version and its own command lines
// too, and names itself "podman-composer".
func versionLine(out, tool string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	name := strings.Fields(tool)[0]
	for _, l := range lines {
		if strings.Contains(l, name) && strings.Contains(l, "version") {
			return strings.Join(strings.Fields(l), " ")
		}
	}
	return strings.TrimSpace(lines[0])
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// cgroupMode tells v2 from v1 the way the cgroup libraries do, and names a
// hybrid host (v1 controllers beside an empty cgroup2 hierarchy).
func cgroupMode() string {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return "unknown"
	}
	if pureCgroupV2() {
		return "v2 (unified)"
	}
	if err := unix.Statfs(filepath.Join("/sys/fs/cgroup", "unified"), &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "v1 controllers, hybrid (cgroup2 at /sys/fs/cgroup/unified)"
	}
	return "v1"
}

// pureCgroupV2 reports whether /sys/fs/cgroup is the one cgroup2 hierarchy.
func pureCgroupV2() bool {
	var st unix.Statfs_t
	return unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}
