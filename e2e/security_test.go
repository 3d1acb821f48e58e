package e2e

import (
	"archive/tar"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/cgroup"
	"github.com/stack-containers/stack/internal/capability"
	"github.com/stack-containers/stack/internal/testenv"
)

// The attacks of issue 12, each tried from inside a container with the
// probe program (e2e/probe), and what must still work beside them.

var (
	probeOnce sync.Once
	// probeDir holds probeBin; TestMain removes it.
	probeDir, probeBin string
	probeErr           error
)

// probeRootfs is a private busybox rootfs with the probe at /bin/probe.
func probeRootfs(t *testing.T) string {
	t.Helper()
	probeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "stack-probe-")
		if err != nil {
			probeErr = err
			return
		}
		probeDir, probeBin = dir, filepath.Join(dir, "probe")
		cmd := exec.Command("go", "build", "-trimpath", "-o", probeBin, "github.com/stack-containers/stack/e2e/probe")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			probeErr = fmt.Errorf("build the probe: %v\n%s", err, out)
		}
	})
	if probeErr != nil {
		t.Fatal(probeErr)
	}
	rootfs := testenv.NewBusyboxRootfs(t)
	data, err := os.ReadFile(probeBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "probe"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	return rootfs
}

// runOne writes a manifest with one container "c" running script under
// sh, with extra container fields, runs `up` in the foreground and returns
// the container's output lines. The script's $ are the shell's: they are
// written $$, so that the manifest's own variables leave them alone.
func runOne(t *testing.T, e *env, rootfs, fields, script string) []string {
	t.Helper()
	script = strings.ReplaceAll(script, "$", "$$")
	e.manifest(fmt.Sprintf("name: sec\ncontainers:\n  c:\n    rootfs: %s\n    command: [sh, -c, %s]\n%s", rootfs, strconv.Quote(script), fields))
	r := e.Run("up")
	if r.Code != 0 {
		t.Fatalf("up: exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	out, _ := outputLines(r.Lines())
	return out["c"]
}

// wantLines fails unless every line of want is among got.
func wantLines(t *testing.T, got []string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("missing %q in the container's output:\n%s", w, strings.Join(got, "\n"))
		}
	}
}

// hostRootDevice is the major and minor of the block device holding the
// host's /, the disk an attacker would read.
func hostRootDevice(t *testing.T) (uint32, uint32) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		t.Fatal(err)
	}
	return unix.Major(st.Dev), unix.Minor(st.Dev)
}

func TestDeviceNodes(t *testing.T) {
	e := newEnv(t)
	rootfs := probeRootfs(t)
	bind := filepath.Join(t.TempDir(), "bind")
	if err := os.Mkdir(bind, 0o755); err != nil {
		t.Fatal(err)
	}
	major, minor := hostRootDevice(t)
	script := fmt.Sprintf(`
		for d in /dev /tmp / /bind; do echo "in $d"; probe node $d/kmsg c 1 11; done
		echo "disk"; probe node /dev/disk b %d %d
		probe open /dev/null /dev/zero /dev/full /dev/random /dev/urandom
		probe pty`, major, minor)
	got := runOne(t, e, rootfs, fmt.Sprintf("    mounts: [%q]\n", bind+":/bind"), script)
	// Each node is made (CAP_MKNOD and "c *:* m", as in Docker) but not
	// opened: on stack's /dev and a bind mount the cgroup's device rules
	// refuse it (EPERM); on the rootfs and its layer, nodev already does
	// (EACCES).
	want := [][2]string{{"in /dev", "EPERM"}, {"in /tmp", "EACCES"}, {"in /", "EACCES"}, {"in /bind", "EPERM"}, {"disk", "EPERM"}}
	for _, w := range want {
		i := slices.Index(got, w[0])
		if i < 0 || i+2 >= len(got) {
			t.Errorf("no result for %q in:\n%s", w[0], strings.Join(got, "\n"))
			continue
		}
		if got[i+1] != "mknod: ok" || got[i+2] != "open: "+w[1] {
			t.Errorf("%s: %q, %q; want the node made and its open refused with %s", w[0], got[i+1], got[i+2], w[1])
		}
	}
	wantLines(t, got,
		"open /dev/null: ok", "open /dev/zero: ok", "open /dev/full: ok",
		"open /dev/random: ok", "open /dev/urandom: ok",
		"open /dev/ptmx: ok", "open /dev/pts/N: ok")
	e.DownLeavingNothing()
}

// TestTarRootfsDeviceNodes gives an unprivileged user a world-writable
// node of the host's kernel log in a tar rootfs: it must not be there.
func TestTarRootfsDeviceNodes(t *testing.T) {
	e := newEnv(t)
	archive := filepath.Join(t.TempDir(), "rootfs.tar")
	writeTar(t, probeRootfs(t), archive, &tar.Header{
		Name: "kmsg", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 11,
	})
	e.manifest(fmt.Sprintf(`name: sec
containers:
  c:
    rootfs: %s
    user: "1000:1000"
    command: [probe, open, /kmsg, /dev/null]
`, archive))
	r := e.Run("up")
	if r.Code != 0 {
		t.Fatalf("up: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	out, _ := outputLines(r.Lines())
	wantLines(t, out["c"], "open /kmsg: ENOENT", "open /dev/null: ok")
	e.DownLeavingNothing()
}

// writeTar packs dir into archive, with extra entries at the end.
func writeTar(t *testing.T, dir, archive string, extra ...*tar.Header) {
	t.Helper()
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	// By hand rather than AddFS, which refuses symlinks.
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr.Name = rel
		if d.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err == nil {
			_, err = tw.Write(data)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range extra {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSeccompDefault(t *testing.T) {
	e := newEnv(t)
	got := runOne(t, e, probeRootfs(t), "", `
		probe syscalls
		unshare -U true 2>/dev/null; echo "unshare -U: $?"
		grep Seccomp: /proc/self/status | tr -d '\t'
		echo "cgroup lines: $(wc -l < /proc/self/cgroup), at the root: $(grep -c ':/$' /proc/self/cgroup)"`)
	wantLines(t, got,
		"keyctl: EPERM", "add_key: EPERM", "io_uring_setup: EPERM",
		"personality query: ok", "personality ADDR_NO_RANDOMIZE: EPERM",
		"clone user namespace: EPERM", "unshare -U: 1", "Seccomp:2")
	// A cgroup namespace of its own: every hierarchy shows its cgroup as /.
	for _, l := range got {
		if n, ok := strings.CutPrefix(l, "cgroup lines: "); ok {
			if lines, root, _ := strings.Cut(n, ", at the root: "); lines != root || lines == "0" {
				t.Errorf("/proc/self/cgroup: %s; want every line to end in :/", n)
			}
		}
	}
	e.DownLeavingNothing()
}

func TestSeccompUnconfined(t *testing.T) {
	e := newEnv(t)
	got := runOne(t, e, probeRootfs(t), "    seccomp: unconfined\n", `
		probe syscalls
		grep Seccomp: /proc/self/status | tr -d '\t'`)
	wantLines(t, got, "keyctl: ok", "add_key: ok", "io_uring_setup: ok", "Seccomp:0")
	// Unconfined, the keyring is still the container's own, not the
	// session keyring stack was started in.
	host, err := unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range got {
		if id, ok := strings.CutPrefix(l, "session keyring: "); ok && id == strconv.Itoa(host) {
			t.Errorf("the container's session keyring is stack's own (%d)", host)
		}
	}
	if !slices.ContainsFunc(got, func(l string) bool { return strings.HasPrefix(l, "session keyring: ") }) {
		t.Errorf("no session keyring in:\n%s", strings.Join(got, "\n"))
	}
	e.DownLeavingNothing()
}

func TestSeccompProfileFile(t *testing.T) {
	e := newEnv(t)
	profile := `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
		{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}`
	if err := os.WriteFile(filepath.Join(e.Dir, "no-mkdir.json"), []byte(profile), 0o644); err != nil {
		t.Fatal(err)
	}
	got := runOne(t, e, e.rootfs, "    seccomp: ./no-mkdir.json\n", `
		mkdir /tmp/d 2>&1; echo "mkdir: $?"
		touch /tmp/f; echo "touch: $?"`)
	wantLines(t, got, "mkdir: can't create directory '/tmp/d': Operation not permitted", "mkdir: 1", "touch: 0")
	e.DownLeavingNothing()
}

func TestSeccompProfileMalformed(t *testing.T) {
	e := newEnv(t)
	if err := os.WriteFile(filepath.Join(e.Dir, "bad.json"), []byte(`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 9, "op": "SCMP_CMP_EQ"}]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	e.manifest("name: sec\ncontainers:\n  c:\n    rootfs: {{rootfs}}\n    command: [sleep, '100']\n    seccomp: ./bad.json\n")
	r := e.Run("up", "-d")
	if r.Code != 2 || !strings.Contains(r.Stderr, "stack.yaml:6:14: containers.c.seccomp: ./bad.json: seccomp profile: syscalls[0].args[0]: index 9") {
		t.Errorf("up with a malformed profile: exit %d, stderr:\n%s\nwant exit 2 and the error located", r.Code, r.Stderr)
	}
	e.AssertNothingLeft()
}

// TestCgroupLimitsHold tries to lift the container's own limits from a
// nested user namespace, then reads them from the host.
func TestCgroupLimitsHold(t *testing.T) {
	e := newEnv(t)
	e.manifest(fmt.Sprintf(`name: sec
containers:
  c:
    rootfs: %s
    memory: 64M
    pids: 50
    command: [sh, -c, "probe cgroup-escape /tmp/cg; echo probed; exec sleep 1000"]
`, probeRootfs(t)))
	e.MustRun("up", "-d")
	// Whatever fails below, down runs before the Env's check of leftovers.
	t.Cleanup(func() { e.Run("down") })
	var logs []string
	e.WaitFor("the probe to finish", func() bool {
		logs = e.MustRun("logs").Lines()
		return slices.ContainsFunc(logs, func(l string) bool { return strings.HasSuffix(l, "| probed") })
	})
	out, _ := outputLines(logs)
	wantLines(t, out["c"], "clone user, mount and cgroup namespaces: EPERM")
	host, err := cgroup.Probe()
	if err != nil {
		t.Fatal(err)
	}
	limits := map[string]string{"memory/memory.limit_in_bytes": "67108864", "pids/pids.max": "50"}
	if host.Mode == cgroup.Unified {
		limits = map[string]string{"memory/memory.max": "67108864", "pids/pids.max": "50"}
	}
	for file, want := range limits {
		ctrl, name, _ := strings.Cut(file, "/")
		dir := hostCgroupDir(t, e, ctrl)
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(b)); got != want {
			t.Errorf("host reads %s = %s, want the manifest's %s", file, got, want)
		}
	}
	e.DownLeavingNothing()
}

// hostCgroupDir is container c's cgroup in a v1 controller's hierarchy,
// or in the v2 hierarchy when that one holds the controller.
func hostCgroupDir(t *testing.T, e *env, ctrl string) string {
	t.Helper()
	for _, root := range []string{"/sys/fs/cgroup/" + ctrl, "/sys/fs/cgroup"} {
		dir := filepath.Join(root, e.CgroupParent, "sec", "c")
		if _, err := os.Stat(dir); err == nil {
			return dir
		}
	}
	t.Fatalf("no %s cgroup for the container under %s", ctrl, e.CgroupParent)
	return ""
}

func TestCapabilities(t *testing.T) {
	e := newEnv(t)
	e.manifest(`name: sec
containers:
  more:
    rootfs: {{rootfs}}
    cap_add: [NET_ADMIN, cap_sys_time]
    cap_drop: [NET_RAW]
    command: [sh, -c, "grep CapBnd /proc/self/status | tr -d '\t'"]
  none:
    rootfs: {{rootfs}}
    cap_drop: [ALL]
    command: [sh, -c, "grep -E 'Cap(Eff|Bnd)' /proc/self/status | tr -d '\t'"]
`)
	r := e.MustRun("up")
	out, _ := outputLines(r.Lines())
	mask, err := capability.Mask(capability.Resolve([]string{"CAP_NET_ADMIN", "CAP_SYS_TIME"}, []string{"CAP_NET_RAW"}))
	if err != nil {
		t.Fatal(err)
	}
	if mask&(1<<unix.CAP_NET_ADMIN) == 0 || mask&(1<<unix.CAP_NET_RAW) != 0 {
		t.Fatalf("mask %#x", mask)
	}
	wantLines(t, out["more"], fmt.Sprintf("CapBnd:%016x", mask))
	wantLines(t, out["none"], "CapEff:0000000000000000", "CapBnd:0000000000000000")
	e.DownLeavingNothing()
}

// TestExecConfinedAsPID1 enters a running container with `stack exec`: the
// command gets the capabilities, seccomp profile, device rules and cgroup
// namespace of the container's PID 1.
func TestExecConfinedAsPID1(t *testing.T) {
	e := newEnv(t)
	e.manifest(fmt.Sprintf(`name: sec
containers:
  c:
    rootfs: %s
    cap_add: [SYS_TIME]
    cap_drop: [NET_RAW]
    command: [sleep, "1000"]
`, probeRootfs(t)))
	e.MustRun("up", "-d")
	status := func(args ...string) []string {
		t.Helper()
		r := e.Run(append([]string{"exec", "-T", "c"}, args...)...)
		if r.Code != 0 {
			t.Fatalf("exec %v: exit %d\n%s\n%s", args, r.Code, r.Stdout, r.Stderr)
		}
		return r.Lines()
	}
	pid1 := status("sh", "-c", "grep -E '^(CapBnd|CapEff|Seccomp|NoNewPrivs):' /proc/1/status | tr -d '\t'")
	self := status("sh", "-c", "grep -E '^(CapBnd|CapEff|Seccomp|NoNewPrivs):' /proc/self/status | tr -d '\t'")
	if !slices.Equal(pid1, self) || !slices.Contains(self, "Seccomp:2") || !slices.Contains(self, "NoNewPrivs:1") {
		t.Errorf("exec'd process: %q\nPID 1: %q\nwant the same, with seccomp filtering and no_new_privs", self, pid1)
	}
	got := status("sh", "-c", "probe syscalls; probe node /dev/kmsg c 1 11; grep -c -v ':/$' /proc/self/cgroup || true")
	wantLines(t, got, "keyctl: EPERM", "io_uring_setup: EPERM", "clone user namespace: EPERM", "mknod: ok", "open: EPERM")
	if last := got[len(got)-1]; last != "0" {
		t.Errorf("%s lines of the exec'd process's /proc/self/cgroup are not /", last)
	}
	e.DownLeavingNothing()
}
