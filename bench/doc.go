// Command bench measures stack against the physical floor and its peers
// (runc, crun, docker-compose, podman-compose) on one machine, in one run,
// and prints the table that docs/benchmarks.md holds, with the plot of the
// time to all running against N beside it (docs/benchmarks-start.svg). It
// needs root.
//
// The floors: the Go floor (the program in bench/gofloor, built at the
// start of a run), which every ratio is taken against: a memory cgroup,
// then one clone with new pid, mount, uts, ipc and net namespaces and a
// chroot per container, all at once; the same with a veth pair per
// container, in a network namespace of the run's own, beside stack with its
// own network in that namespace; and the shell floor (unshare and chroot).
//
//	go run ./bench [-quick] [-stack bin/stack] [-out docs/benchmarks.md]
//
// A run goes through these phases:
//
//  1. Prepare: a run id (stack-bench-<random>) that names the run's
//     directory, its cgroup in every hierarchy, container ids and compose
//     projects; a busybox rootfs shared read-only by every system; the Go
//     floor built; a network namespace held by a sleeping process; a
//     subscription to the kernel's process events connector (procevents.go),
//     whose exec and exit events time every system by the same clock.
//  2. Probe: each peer runs one container of /bin/true; one that is missing
//     or cannot run on this host is reported as skipped with its own error
//     (crun 1.8 refuses hybrid cgroup hosts; docker-compose needs a Docker
//     engine).
//  3. Measure, each section interleaving the systems it compares in an
//     order rotated per round, so that noise from a shared machine falls on
//     all of them alike:
//     start (N to all running, its teardown, N to all finished),
//     logs (throughput with persistence, against cat, every line checked),
//     oom (OOM kill to running again), footprint (memory and CPU of the
//     processes a system keeps beside idle containers).
//  4. Clean up: every system tears down what it started; the run's
//     cgroups, mounts and directory are then checked and removed, and
//     anything a system left behind is reported.
//  5. Report: medians and ratios to the Go floor, the targets of issue 18
//     judged on them, the load average of each section, the machine and
//     the tools' versions, as markdown; and the SVG plot, written by hand.
//
// Nothing here asserts on a time: the tests check the harness's logic and
// that it finds and removes what it starts.
package main
