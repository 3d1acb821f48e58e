package cgroup

import (
	"os"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

func TestDeviceRuleString(t *testing.T) {
	for _, tc := range []struct {
		rule DeviceRule
		want string
	}{
		{DeviceRule{'c', 1, 3, "rwm"}, "c 1:3 rwm"},
		{DeviceRule{'b', Any, Any, "m"}, "b *:* m"},
		{DeviceRule{'c', 136, Any, "rw"}, "c 136:* rw"},
		{DeviceRule{'a', Any, Any, "rwm"}, "a *:* rwm"},
	} {
		if got := tc.rule.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.rule, got, tc.want)
		}
		if err := tc.rule.validate(); err != nil {
			t.Errorf("%q: %v", tc.want, err)
		}
	}
	for _, bad := range []DeviceRule{
		{'x', 1, 3, "rwm"},
		{'c', -2, 3, "rwm"},
		{'c', 1, 1 << 32, "r"},
		{'c', 1, 3, ""},
		{'c', 1, 3, "rwx"},
	} {
		if err := bad.validate(); err == nil {
			t.Errorf("%+v: validate accepted it", bad)
		}
	}
}

// deviceProbes are the accesses the "devices" helper tries: the host's
// own /dev/null and /dev/zero, and nodes it makes itself.
var deviceProbes = []struct {
	name string
	try  func(dir string) error
}{
	{"open null rw", func(string) error { return openNode("/dev/null", unix.O_RDWR) }},
	{"open zero r", func(string) error { return openNode("/dev/zero", unix.O_RDONLY) }},
	{"open zero rw", func(string) error { return openNode("/dev/zero", unix.O_RDWR) }},
	{"mknod char 1:11", func(dir string) error {
		return unix.Mknod(dir+"/kmsg", unix.S_IFCHR|0o600, int(unix.Mkdev(1, 11)))
	}},
	{"open char 1:11", func(dir string) error { return openNode(dir+"/kmsg", unix.O_WRONLY) }},
	{"mknod block 7:0", func(dir string) error {
		return unix.Mknod(dir+"/loop0", unix.S_IFBLK|0o600, int(unix.Mkdev(7, 0)))
	}},
}

func openNode(path string, flags int) error {
	fd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd)
	}
	return err
}

// probeDevices runs the devices helper in cg and returns what it saw.
func probeDevices(t *testing.T, cg Cgroup) []string {
	t.Helper()
	dir := t.TempDir()
	ch := startHelper(t, "devices "+dir, nil)
	if err := cg.AddProc(ch.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	ch.release(t)
	lines := ch.readUntil(t, "done")
	if err := ch.cmd.Wait(); err != nil {
		t.Fatalf("helper: %v (%s)", err, ch.stderr)
	}
	return lines
}

func TestDeviceRules(t *testing.T) {
	eachDriver(t, "", func(t *testing.T, h Host, rd realDriver, parent string) {
		if rd.d.Version() == 1 && h.V1["devices"] == "" {
			t.Skip("the v1 devices controller is not mounted")
		}
		// Any character node may be made, only /dev/null used, and
		// /dev/zero only read.
		rules := []DeviceRule{
			{'c', Any, Any, "m"},
			{'c', 1, 3, "rw"},
			{'c', 1, 5, "r"},
		}
		cg, err := rd.d.Create(parent+"/dev", Resources{Devices: rules})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			"open null rw: ok",
			"open zero r: ok",
			"open zero rw: EPERM",
			"mknod char 1:11: ok",
			"open char 1:11: EPERM",
			"mknod block 7:0: EPERM",
		}
		if got := probeDevices(t, cg); !slices.Equal(got, want) {
			t.Errorf("with %v the helper saw\n%q\nwant\n%q", rules, got, want)
		}

		// A second Set replaces the rules; it does not add to them.
		rules = []DeviceRule{{'a', Any, Any, "m"}, {'c', 1, 5, "rw"}}
		if err := cg.Set(Resources{Devices: rules}); err != nil {
			t.Fatal(err)
		}
		want = []string{
			"open null rw: EPERM",
			"open zero r: ok",
			"open zero rw: ok",
			"mknod char 1:11: ok",
			"open char 1:11: EPERM",
			"mknod block 7:0: ok",
		}
		if got := probeDevices(t, cg); !slices.Equal(got, want) {
			t.Errorf("with %v the helper saw\n%q\nwant\n%q", rules, got, want)
		}
		if rd.d.Version() == 2 {
			if n := attachedDevicePrograms(t, h.V2+"/"+parent+"/dev"); n != 1 {
				t.Errorf("%d device programs attached after two Sets, want 1", n)
			}
		}

		// The same rules again change nothing (on v2 the program already
		// attached is the one they load), and another cgroup given them
		// (on v2 sharing that program) is held to them as well.
		if err := cg.Set(Resources{Devices: rules}); err != nil {
			t.Fatal(err)
		}
		other, err := rd.d.Create(parent+"/other", Resources{Devices: rules})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []Cgroup{cg, other} {
			if got := probeDevices(t, c); !slices.Equal(got, want) {
				t.Errorf("%s with %v set again: the helper saw\n%q\nwant\n%q", c.Path(), rules, got, want)
			}
		}
		if rd.d.Version() == 2 {
			for _, dir := range []string{"dev", "other"} {
				if n := attachedDevicePrograms(t, h.V2+"/"+parent+"/"+dir); n != 1 {
					t.Errorf("%s: %d device programs attached, want 1", dir, n)
				}
			}
		}
		if err := rd.d.Load(parent).Destroy(); err != nil {
			t.Fatal(err)
		}
	})
}

func attachedDevicePrograms(t *testing.T, dir string) int {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	q, err := link.QueryPrograms(link.QueryOptions{Target: int(f.Fd()), Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		t.Fatal(err)
	}
	return len(q.Programs)
}
