package runtime

import (
	"github.com/stack-containers/stack/cgroup"
	"github.com/stack-containers/stack/runtime/containerinit"
)

// DeviceRules are the device accesses a container's cgroup is to allow,
// runc's default list: any node may be made (mknod alone opens nothing),
// and only the devices of stack's /dev may be opened, with /dev/console
// and the pseudo-terminals of its devpts (/dev/ptmx is 5:2, pts/N 136:N).
func DeviceRules() []cgroup.DeviceRule {
	rules := []cgroup.DeviceRule{
		{Type: 'c', Major: cgroup.Any, Minor: cgroup.Any, Access: "m"},
		{Type: 'b', Major: cgroup.Any, Minor: cgroup.Any, Access: "m"},
	}
	for _, d := range containerinit.Devices() {
		rules = append(rules, cgroup.DeviceRule{Type: 'c', Major: int64(d.Major), Minor: int64(d.Minor), Access: "rwm"})
	}
	return append(rules,
		cgroup.DeviceRule{Type: 'c', Major: 5, Minor: 1, Access: "rwm"},
		cgroup.DeviceRule{Type: 'c', Major: 5, Minor: 2, Access: "rwm"},
		cgroup.DeviceRule{Type: 'c', Major: 136, Minor: cgroup.Any, Access: "rwm"})
}
