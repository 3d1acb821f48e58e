package runtime

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stack-containers/stack/cgroup"
	"github.com/stack-containers/stack/internal/busybox"
	"github.com/stack-containers/stack/internal/testenv"
	"github.com/stack-containers/stack/seccomp"
)

// TestStartCost measures, without asserting anything about time, the start
// cost of a container next to the floor set by util-linux's unshare doing
// the least a container needs. Run it alone to read the numbers:
//
//	go test -run TestStartCost -v ./runtime
func TestStartCost(t *testing.T) {
	testenv.RequireRoot(t)
	rootfs := testenv.BusyboxRootfs(t)
	unshare, err := utilLinuxUnshare()
	if err != nil {
		testenv.SkipOrFail(t, "no floor to compare with: "+err.Error())
	}
	n := 100
	if testing.Short() {
		n = 10
	}
	// The floor's namespaces: pid, mount, uts, ipc.
	same := []string{"pid", "mount", "uts", "ipc"}
	var floor, started, ended, withNet []time.Duration
	for range n {
		t0 := time.Now()
		cmd := exec.Command(unshare, "-fpmui", "--mount-proc="+filepath.Join(rootfs, "proc"), "chroot", rootfs, "/bin/true")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("floor: %v: %s", err, out)
		}
		floor = append(floor, time.Since(t0))

		spec := newSpec(t, rootfs, "/bin/true")
		spec.Namespaces = same
		toExec, toExit := timeStart(t, spec)
		started, ended = append(started, toExec), append(ended, toExit)

		toExec, _ = timeStart(t, newSpec(t, rootfs, "/bin/true"))
		withNet = append(withNet, toExec)
	}
	median := func(d []time.Duration) time.Duration {
		slices.Sort(d)
		return d[len(d)/2]
	}
	f := median(floor)
	t.Logf("%d sequential starts of /bin/true on the busybox rootfs, medians:", n)
	t.Logf("  floor: unshare -fpmui --mount-proc chroot, to exit:   %v", f)
	t.Logf("  stack, same namespaces, Start to program exec'd:     %v (%.2fx)", median(started), float64(median(started))/float64(f))
	t.Logf("  stack, same namespaces, Start to program exited:     %v (%.2fx)", median(ended), float64(median(ended))/float64(f))
	t.Logf("  stack, default namespaces (+net), Start to exec'd:   %v", median(withNet))
}

// utilLinuxUnshare finds util-linux's unshare on PATH: busybox's applet of
// the same name, all that a busybox system may have, fails the floor's
// --mount-proc.
func utilLinuxUnshare() (string, error) {
	path, err := exec.LookPath("unshare")
	if err != nil {
		return "", fmt.Errorf("unshare (util-linux) is not installed: %w", err)
	}
	out, err := exec.Command(path, "--version").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("util-linux")) {
		return "", fmt.Errorf("%s is not util-linux's unshare (--version: %v, %q)", path, err, bytes.TrimSpace(out))
	}
	return path, nil
}

// TestUtilLinuxUnshareRefusesBusybox: busybox's unshare first on PATH is no
// floor.
func TestUtilLinuxUnshareRefusesBusybox(t *testing.T) {
	bb, err := busybox.Path()
	if err != nil {
		testenv.SkipOrFail(t, err.Error())
	}
	dir := t.TempDir()
	if err := os.Symlink(bb, filepath.Join(dir, "unshare")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	if path, err := utilLinuxUnshare(); err == nil || !strings.Contains(err.Error(), "not util-linux's") {
		t.Errorf("utilLinuxUnshare with busybox's unshare on PATH = %q, %v; want it refused", path, err)
	}
}

// timeStart starts spec, which must exit 0, and returns how long Start took
// (to the program's exec) and how long until the program had exited.
func timeStart(t *testing.T, spec *Spec) (toExec, toExit time.Duration) {
	t.Helper()
	t0 := time.Now()
	c, err := Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	toExec = time.Since(t0)
	if st, err := c.Wait(); err != nil || st.Code != 0 {
		t.Fatalf("%v: exit %+v, %v", spec.Args, st, err)
	}
	toExit = time.Since(t0)
	if err := c.Cleanup(); err != nil {
		t.Fatal(err)
	}
	return toExec, toExit
}

// TestSecurityCost measures, without asserting anything about time, what
// Docker's seccomp filter and the cgroup's device rules add to a start:
// each round makes a cgroup, starts /bin/true in it and waits for its end,
// with both, with each alone and with neither, in turn so that all four
// see the same machine. Run it alone to read the numbers:
//
//	go test -run TestSecurityCost -v ./runtime
func TestSecurityCost(t *testing.T) {
	testenv.RequireRoot(t)
	rootfs := testenv.BusyboxRootfs(t)
	d, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}
	n := 100
	if testing.Short() {
		n = 10
	}
	parent := testCgroup(t, cgroup.Resources{}).Path()
	round := func(name string, filter, devices bool) time.Duration {
		res := cgroup.Resources{Memory: 64 << 20}
		if devices {
			res.Devices = DeviceRules()
		}
		spec := newSpec(t, rootfs, "/bin/true")
		if !filter {
			spec.Seccomp = seccomp.Unconfined()
		}
		t0 := time.Now()
		cg, err := d.Create(parent+"/"+name, res)
		if err != nil {
			t.Fatal(err)
		}
		spec.Cgroup = cg
		timeStart(t, spec)
		took := time.Since(t0)
		if err := cg.Destroy(); err != nil {
			t.Fatal(err)
		}
		return took
	}
	kinds := []struct {
		name            string
		filter, devices bool
		took            []time.Duration
	}{
		{name: "both", filter: true, devices: true},
		{name: "seccomp", filter: true},
		{name: "devices", devices: true},
		{name: "neither"},
	}
	for range n {
		for i := range kinds {
			k := &kinds[i]
			k.took = append(k.took, round(k.name, k.filter, k.devices))
		}
	}
	t.Logf("%d rounds of /bin/true in a new 64 MiB cgroup (v%d), from cgroup creation to the program's exit, medians:", n, d.Version())
	for _, k := range kinds {
		slices.Sort(k.took)
		t.Logf("  %-8s %v", k.name, k.took[len(k.took)/2])
	}
}
