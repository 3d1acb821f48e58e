package runtime

import (
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stack-containers/stack/cgroup"
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
	if _, err := exec.LookPath("unshare"); err != nil {
		testenv.SkipOrFail(t, "unshare (util-linux) is not installed: no floor to compare with")
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
		cmd := exec.Command("unshare", "-fpmui", "--mount-proc="+filepath.Join(rootfs, "proc"), "chroot", rootfs, "/bin/true")
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
