// Package cgroup owns every file under /sys/fs/cgroup that stack touches.
// It knows nothing of containers: it makes, limits, watches, empties and
// removes cgroups by path, on either cgroup version.
//
// # Detection
//
// Probe looks once at the host: statfs(/sys/fs/cgroup) returning
// CGROUP2_SUPER_MAGIC means unified mode and the v2 driver. Otherwise the
// v1 controllers' mount points come from /proc/self/mountinfo (never
// assumed), and the mode is hybrid when a cgroup2 hierarchy is mounted too
// (usually /sys/fs/cgroup/unified, with few or no controllers) or legacy
// when not. Hybrid hosts limit through v1. Host.String describes all of it
// for diagnostics.
//
// Drivers take their roots in their constructors (NewV1, NewV2), so that
// tests can point them at a fake cgroupfs in a temporary directory.
//
// # A cgroup's life
//
//  1. Create makes the directory (and its parents) in each hierarchy and
//     applies the limits; where it made the directory itself, a limit
//     equal to what the kernel gives a new cgroup is not written. v1
//     makes it in memory, cpu, pids, devices and freezer, skipping a
//     controller that is not mounted unless a limit needs it. v2
//     first enables the controllers the limits need, plus memory wherever
//     offered (for Stats and OOMKills), in cgroup.subtree_control of every
//     ancestor from the root down.
//     Device rules (Resources.Devices) are an allow list: v1 writes "a" to
//     devices.deny, then each rule to devices.allow; v2, which has no
//     devices controller, attaches a BPF_PROG_TYPE_CGROUP_DEVICE program
//     compiled from the rules (BPF_PROG_ATTACH with BPF_F_ALLOW_MULTI, so
//     it lives as long as the cgroup and an ancestor's program still has
//     its say) and detaches the one a previous Set attached. A driver
//     loads a rule list's program once and attaches it to every cgroup
//     given that list: the load was most of a Create's cost. Cgroup files
//     are opened with open(2) itself, never through the Go runtime's
//     poller, which would register (and unregister) each one.
//  2. A process enters by pid (AddProc), or on v2 is born inside through
//     the directory descriptor from OpenFD (CLONE_INTO_CGROUP).
//  3. Set changes limits on a live cgroup; a zero field clears its limit.
//  4. Stats, Procs and OOMKills read the accounting. MemoryUsage leaves out
//     inactive page cache, as docker stats does. The OOM-kill count is v1's
//     oom_kill in memory.oom_control; on v2 it is memory.events'
//     oom_group_kill where memory.oom.group is on (oom_kill there counts
//     every process a group kill took), oom_kill otherwise.
//  5. OOMEvents watches with a context: v1 through an eventfd registered in
//     cgroup.event_control (it fires on OOM situations; the count confirms a
//     kill), v2 through inotify on memory.events. Sends never block: a slow
//     reader sees notifications coalesce, never a stuck watcher.
//  6. Kill empties the cgroup and leaves it fit for new processes: rounds
//     of freeze, SIGKILL every process, thaw, until none is left. Not v2's
//     cgroup.kill: on some kernels every child later cloned into a cgroup
//     killed that way gets SIGKILL at birth (v2Cgroup.Kill).
//  7. Destroy removes the tree deepest first, retrying while the kernel
//     still reports it busy; a missing cgroup is not an error. Remove is
//     Kill and Destroy in one: it tries rmdir first (v1: the freezer's
//     hierarchy last), which the kernel refuses for a cgroup with a
//     process or a child, so an empty cgroup goes without being listed,
//     and a busy one is killed (v2: through cgroup.kill where present,
//     since nothing joins it again) and destroyed as before.
//
// Every error names the file, and for a write the value written, e.g.
//
//	cgroup: write "2000000" to /sys/fs/cgroup/memory/x/memory.limit_in_bytes: invalid argument
package cgroup
