// Package supervisor runs a stack: it starts the containers of a manifest
// in dependency order, restarts them by their policies, carries their
// output into the logs (package logs) and keeps a state file that ps, logs
// and down read. It decides; package runtime starts one container and
// package cgroup limits and empties one cgroup.
//
// # Phases of a start (Start)
//
//  1. Lock. The stack's lock is a flock on STACK_STATE_DIR/<stack>/lock,
//     held by the live supervisor for its whole life. The kernel drops it
//     however the supervisor ends, so holding it proves that no
//     supervisor of the stack is alive: a second up is refused (`stack "x"
//     is already running`), and down knows whether to ask a supervisor or
//     to clean up by itself.
//  2. Clear. What an earlier run left (it ended, or its supervisor was
//     killed) is stopped and removed from its state file, as down does.
//  3. Record and create. First what outlives the run (volumes.go): the
//     named volumes the containers mount, under
//     STACK_DATA_DIR/volumes/<stack>/<volume>, and the missing host paths
//     of bind mounts, owned by the invoking user. Then the state file is
//     written before anything else is created, so that a down can find
//     whatever follows even if this process dies half-way; then the logs
//     are opened. Then the stack's network (network.go), when a container
//     is on it: the state names its devices before they exist; the
//     bridge, the addresses in name order, and the published ports, bound
//     before any container starts so that a taken one fails the start
//     with nothing running. Each start of a container on the network gets
//     a new veth pair (the runtime makes it once the namespace exists)
//     with the same address and MAC.
//  4. Start. The containers start concurrently, at most Config.StartLimit
//     at once. Each first gets what its runs share (setUp): a cgroup at
//     <STACK_CGROUP_PARENT>/<stack>/<container>, watched for OOM events,
//     and on the network its /etc/hosts and /etc/resolv.conf; made here
//     rather than for all containers before the first starts, so that
//     the first ones run while the last ones' are made. Each starts once
//     everything it depends on (depends_on, join) has started
//     and the conditions of its depends_on hold (service_healthy:
//     the dependency's check passed; service_completed_successfully: it
//     exited 0); one that can no longer be met fails the start, naming
//     both containers. A container's output goes through two pipes to its
//     Log; its stdin is /dev/null. If one fails to start, the start is
//     abandoned: what was started is stopped (in reverse order), every
//     trace is removed, and the error names the container and the cause.
//
// # Supervision
//
// Each container has a run loop: it waits for PID 1 to end, empties the
// cgroup (without a pid namespace, children can outlive PID 1 and hold the
// output pipes), waits for the last output, and asks the Restarter (pure
// policy on a Clock) what follows. "OOM" means that the cgroup's OOM-kill
// count rose during the run; the OOM events only make the kill show in the
// logs as it happens. Events (started, exited with status N, OOM-killed at
// usage/limit, restarting in D, gave up) go into the container's log. When
// every loop has returned, the stack has ended: the cgroups and layers are
// removed, the state is marked ended and kept with the logs for ps and
// logs, and the lock is dropped.
//
// # Stopping
//
// Stop walks the dependency graph in reverse, independent containers
// concurrently: each gets its stop signal and stop_timeout to end, then its
// cgroup is killed. A PID 1 of its own pid namespace that has no handler
// for the stop signal is killed at once, since the kernel discards such a
// signal and waiting would change nothing (SigCgt in /proc/PID/status).
// Kill ends the grace periods. A container being stopped is never
// restarted: the stop flag is set under the same lock that a run's start
// holds, so a stop either prevents a start or sees the run it started.
//
// # When the supervisor dies
//
// The containers are stopped, not left running: each is started with
// SIGKILL as its parent-death signal (runtime.Spec.ParentDeathSignal,
// PR_SET_PDEATHSIG), so the kernel kills its PID 1 when the supervisor
// dies. The signal fires when the thread that cloned the PID 1 ends: the
// runtime's builder threads never end while the process lives, and an
// init program is started from goroutines that never lock their thread
// (the Go runtime only ends a thread whose goroutine exited while locked
// to it). A container left running without its supervisor would be
// silent and unwatched: nothing would read
// its output (it would block on a full pipe) and nothing would apply its
// restart policy. Down (or the next up) then finds the lock free and
// removes what the state file lists: it signals any container still alive
// (one without a pid namespace may have children that outlived PID 1),
// kills and removes each cgroup, removes the layers, then the state. Every
// mount lives in a container's own mount namespace, so none outlives it.
//
// # State
//
// STACK_STATE_DIR/<stack>/ holds lock, state.json (replaced atomically by
// rename), containers/ and, for up -d, supervisor.log. containers/ holds a
// directory per container, <container>.<random hex>, named anew at each
// up: its log (<container>.log and its rotated elders), its writable
// layer (layer/) and overlayfs's work directory (work/). containers/ is
// marked as the top of unrelated trees for ext4's inode allocator
// (linux.MarkTopDir); containerdir.go says why, and why the random part.
// Processes are recorded with their start time (field 22 of
// /proc/PID/stat), so that a pid reused by another process is never taken
// for a container or the supervisor, let alone signalled.
//
// Changes to the state (a container started, ended, restarting) are made
// in memory and written by one writer goroutine a moment later, so that a
// burst of them, such as a whole stack starting, costs a write or two
// rather than one each, and no start waits on the disk. Three writes are
// synchronous: the first, before anything is created; the one before
// Start returns, so that up -d reports the stack up only once the state
// says every container runs; and the last, marking the stack ended, after
// the writer has been ended, so that no older snapshot can land after it.
// A write takes its snapshot and renames it into place under one lock, so
// the file never goes back to an older state.
//
// If the supervisor is killed between a change and its write, the file
// lags behind by a few events, and a down must still remove everything.
// It does: what it removes by (cgroup paths, layer directories, stop
// order) is fixed by the first write and never changes. What may lag is a
// container's process and state: a pid missing from the file belongs to a
// PID 1 that the kernel kills with its supervisor (PDEATHSIG), and any
// child of it is in the container's cgroup, which down kills by path; a
// stale pid is recorded with its start time, so it is never signalled
// once reused.
//
// # Where things are
//
// start.go: the phases of a start and its undoing; spec.go: a container's
// runtime.Spec; runloop.go: supervision and OOM events; stop.go: stopping;
// release.go: what an ended stack gives back; statewriter.go: the state in
// memory and its writer; state.go: the file's format; down.go: down and
// the supervisor-less cleanup; detach.go: up -d; status.go: ps; exec.go:
// a command run in a running container, from the state file alone;
// health.go: the health checks (a checker per run, exec'd into the
// container, killed at its timeout and when the run stops) and the
// depends_on conditions; wait.go: up --wait.
//
// # Background supervisor
//
// up -d runs the stack binary again in a new session (Detach); the
// supervisor gets the validated stack on a pipe, runs Run, and reports
// "every container runs" or the start's error on another pipe, so that
// up -d returns 0 only once the stack is up. The error goes as JSON with
// its kind (already running, permission denied) beside its text, so that
// up -d tells the user what foreground up would, hint included.
package supervisor
