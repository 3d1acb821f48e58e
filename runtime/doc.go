// Package runtime starts one container, the way runc would, without runc.
//
// Start runs in the supervisor. Most containers are built in one of the
// supervisor's own threads, with no init program (inthread.go,
// builders.go, and containerinit's inthread.go):
//
//  1. prepare: check the Spec, resolve the rootfs (a directory, or an
//     image's layers, which the image store unpacked: they become the
//     overlay's lower directories), create the layer dir (the overlay's
//     upper directory, onto which the root is mounted, and its work
//     directory beside it) and open the namespaces to join, the cgroup
//     (v1: its tasks files; v2: its directory) and the program's output.
//  2. build, on a builder thread: new namespaces for the thread (unshare),
//     the rootfs, hostname, workdir, PATH lookup and user, as the init
//     program's steps 3 to 6 below, with the same code. Meanwhile, for a
//     container on a network, another goroutine makes its veth pair and
//     configures eth0 in the thread's new network namespace from outside
//     (network.AttachInto); the build waits for it.
//  3. clone and exec: the thread clones the container's PID 1 sharing its
//     memory (internal/vfork), which mounts /proc, joins the cgroup (v1:
//     tasks files; v2: the clone puts it there) and takes step 5 below as
//     a list of system calls, to the execve. Start returns once it has
//     exec'd.
//
// A container with a user namespace, and a cgroup the runtime does not
// know how to join by itself, take the init program's way:
//
//  1. prepare, as above.
//  2. clone: execute the init program with containerinit.InitArg:
//     stack-init, embedded in the stack binary and run from a sealed memfd
//     (InitProgram), or else this binary again (/proc/self/exe); the
//     kernel creates the new namespaces at clone time
//     (SysProcAttr.Cloneflags). The init's configuration is already
//     waiting on a SOCK_SEQPACKET pipe passed as ExtraFiles[0].
//  3. init (containerinit.MaybeInit, in the container, on one locked
//     thread: the package's doc says its steps): join namespaces, build
//     the rootfs inside the container's own mount namespace, pivot_root,
//     hostname, workdir, PATH lookup. Meanwhile, for a container on a
//     network, the parent makes its veth pair and configures eth0 in the
//     new network namespace from outside (network.AttachInto), then sends
//     MsgLinked, which the init waits for before it goes on.
//  4. placement: the init joins the container's cgroup (v1: by itself,
//     through tasks files the parent opened; v2: it reports ready and the
//     supervisor moves it), so the Go init's memory stays charged outside
//     and only the user's program is charged inside.
//  5. exec: unshare the cgroup namespace if asked, mark every inherited
//     descriptor close-on-exec, drop to Docker's default capabilities and
//     the user's uid/gid with no_new_privs, set the open files limit,
//     install the seccomp filter (compiled here, by the parent: it crosses
//     the pipe as instructions) and execve the program as the namespace's
//     PID 1. The pipe closes on exec: the supervisor reads end-of-file and
//     Start returns. A failure at any step travels back over the pipe as
//     data (message and errno), so Start's error reads
//     `container "web": exec "/bin/nope": no such file or directory`; the
//     builder's failures read the same.
//
// What runs in the container is package containerinit, which the init
// program links alone: none of this package's dependencies (cgroup,
// network, seccomp's compiler) weighs on every container's start.
//
// Exec (exec.go) starts a further process inside a running container: the
// parent enters its pid namespace on a locked thread and starts the init
// program with containerinit.ExecArg from there; that process enters the
// other namespaces, is placed in the container's cgroup and ends through
// the init's own tail, so both are confined alike.
//
// Since every mount lives in the container's mount namespace, the host's
// mount table never changes and a dead container leaves no mount behind:
// cleaning up is removing the layer dir (Container.Cleanup, or RemoveLayer
// without a handle).
//
// Descriptors that are only paths (O_PATH) or read-only files (namespace
// handles) are closed without checking the result: their close cannot
// lose data.
package runtime
