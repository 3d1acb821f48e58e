package cgroup

import (
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// TestRemove: Remove takes away an empty cgroup, and one with a process in
// it, in a child cgroup, or (v1) in one hierarchy only, killing the
// process; a missing cgroup is no error.
func TestRemove(t *testing.T) {
	eachDriver(t, "", func(t *testing.T, h Host, rd realDriver, parent string) {
		cases := []struct {
			name string
			// join puts pid into the cgroup at path.
			join func(t *testing.T, cg Cgroup, path string, pid int)
		}{
			{"empty", nil},
			{"busy", func(t *testing.T, cg Cgroup, _ string, pid int) {
				if err := cg.AddProc(pid); err != nil {
					t.Fatal(err)
				}
			}},
			{"child", func(t *testing.T, _ Cgroup, path string, pid int) {
				kid, err := rd.d.Create(path+"/kid", Resources{})
				if err != nil {
					t.Fatal(err)
				}
				if err := kid.AddProc(pid); err != nil {
					t.Fatal(err)
				}
			}},
		}
		if rd.d.Version() == 1 {
			for _, ctrl := range []string{"memory", "devices"} {
				if h.V1[ctrl] == "" {
					continue
				}
				cases = append(cases, struct {
					name string
					join func(t *testing.T, cg Cgroup, path string, pid int)
				}{"only-" + ctrl, func(t *testing.T, _ Cgroup, path string, pid int) {
					if err := writeFile(filepath.Join(h.V1[ctrl], path, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
						t.Fatal(err)
					}
				}})
			}
		}
		for _, tc := range cases {
			path := parent + "/" + tc.name
			cg, err := rd.d.Create(path, Resources{})
			if err != nil {
				t.Fatal(err)
			}
			var ch *child
			if tc.join != nil {
				ch = startHelper(t, "block", nil)
				tc.join(t, cg, path, ch.cmd.Process.Pid)
			}
			if err := cg.Remove(); err != nil {
				t.Fatalf("%s: Remove: %v", tc.name, err)
			}
			if ch != nil {
				err := ch.cmd.Wait()
				ws, _ := ch.cmd.ProcessState.Sys().(syscall.WaitStatus)
				if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
					t.Errorf("%s: the cgroup's process ended with %v, want SIGKILL", tc.name, err)
				}
			}
			requireGone(t, h, path)
			if err := rd.d.Load(path).Remove(); err != nil {
				t.Errorf("%s: Remove of a missing cgroup: %v", tc.name, err)
			}
		}
	})
}
