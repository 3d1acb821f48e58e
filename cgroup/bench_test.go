package cgroup

import (
	"fmt"
	"os"
	"testing"
)

// BenchmarkCreateDestroy makes and removes one container's cgroup as the
// supervisor does, with no limits but a device list like runtime's, in
// every hierarchy the host has (root).
func BenchmarkCreateDestroy(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: it makes real cgroups")
	}
	h, err := Probe()
	if err != nil {
		b.Fatalf("probe: %v", err)
	}
	rules := []DeviceRule{
		{Type: 'c', Major: Any, Minor: Any, Access: "m"},
		{Type: 'b', Major: Any, Minor: Any, Access: "m"},
	}
	for _, dev := range [][2]int64{{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 1}, {5, 2}, {136, Any}} {
		rules = append(rules, DeviceRule{Type: 'c', Major: dev[0], Minor: dev[1], Access: "rwm"})
	}
	for _, d := range hostDrivers(h) {
		parent := fmt.Sprintf("stack-bench-%d", os.Getpid())
		b.Run(fmt.Sprintf("%T", d), func(b *testing.B) {
			defer func() {
				if err := d.Load(parent).Destroy(); err != nil {
					b.Error(err)
				}
			}()
			for b.Loop() {
				c, err := d.Create(parent+"/c", Resources{Devices: rules})
				if err != nil {
					b.Fatal(err)
				}
				if err := c.Destroy(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
