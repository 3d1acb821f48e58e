// Package capability names the Linux capabilities and works out a
// container's set from Docker's default and a manifest's cap_add and
// cap_drop, so that the manifest's checks and the runtime's bits agree.
package capability

import (
	"fmt"
	"slices"
	"strings"
)

// names are the capabilities by number (linux/capability.h), without the
// CAP_ prefix.
var names = []string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL",
	"SETGID", "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE",
	"NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
	"SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
	"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
	"SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL",
	"SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
	"BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
}

// Default is Docker's default set, in the canonical spelling.
var Default = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// All is the keyword of cap_add and cap_drop for every capability.
const All = "ALL"

// Canonical returns a capability name in the canonical spelling
// ("CAP_NET_ADMIN"), accepting any case, with or without CAP_; All stays
// All. An unknown name is an error that lists none of the 41 names but
// says where they are.
func Canonical(name string) (string, error) {
	up := strings.ToUpper(strings.TrimSpace(name))
	if up == All {
		return All, nil
	}
	bare := strings.TrimPrefix(up, "CAP_")
	if !slices.Contains(names, bare) {
		return "", fmt.Errorf("unknown capability %q (see capabilities(7); ALL means every one)", name)
	}
	return "CAP_" + bare, nil
}

// Resolve is the set a container gets, sorted by number: Docker's default
// with add added and drop taken away. ALL in add starts from every
// capability, ALL in drop from none, as in Docker. Names are canonical.
func Resolve(add, drop []string) []string {
	var set []string
	switch {
	case slices.Contains(add, All):
		set = Names()
	case slices.Contains(drop, All):
		// Empty, not nil: nil would mean the default set to the runtime.
		set = []string{}
	default:
		set = slices.Clone(Default)
	}
	for _, c := range add {
		if c != All && !slices.Contains(set, c) {
			set = append(set, c)
		}
	}
	set = slices.DeleteFunc(set, func(c string) bool { return slices.Contains(drop, c) })
	slices.SortFunc(set, func(a, b string) int { return Number(a) - Number(b) })
	return set
}

// Names is every capability, canonical, by number.
func Names() []string {
	all := make([]string, len(names))
	for i, n := range names {
		all[i] = "CAP_" + n
	}
	return all
}

// Number is the capability's number, -1 for a name Canonical would refuse.
func Number(canonical string) int {
	return slices.Index(names, strings.TrimPrefix(canonical, "CAP_"))
}

// Mask is the set as a bit mask, bit N for capability N.
func Mask(set []string) (uint64, error) {
	var m uint64
	for _, c := range set {
		n := Number(c)
		if n < 0 {
			return 0, fmt.Errorf("unknown capability %q", c)
		}
		m |= 1 << n
	}
	return m, nil
}
