// Package runtime starts one container, the way runc would, without runc.
//
// Start runs in the supervisor and goes through these phases:
//
//  1. prepare: check the Spec, resolve the rootfs (a directory, or an
//     image's layers, which the image store unpacked: they become the
//     overlay's lower directories), create the layer dir (upper, work and
//     merged) and open the namespaces to join.
//  2. clone: execute the init program with InitArg: stack-init, embedded
//     in the stack binary and run from a sealed memfd (InitProgram), or
//     else this binary again (/proc/self/exe); the kernel creates the new
//     namespaces at clone time
//     (SysProcAttr.Cloneflags). The init's configuration is already
//     waiting on a SOCK_SEQPACKET pipe passed as ExtraFiles[0].
//  3. init (MaybeInit, in the container, on one locked thread): join
//     namespaces (setns), make every mount inside the container's own
//     mount namespace (overlay or read-only bind root, /dev, /proc with
//     runc's masks, read-only /sys, bind mounts; every target resolved
//     inside the rootfs with openat2 RESOLVE_IN_ROOT and mounted through a
//     descriptor), pivot_root, hostname, workdir, PATH lookup.
//  4. placement: the init reports ready; the supervisor moves it into the
//     container's cgroup and lets it go on, so the Go init's memory stays
//     charged outside and only the user's program is charged inside.
//  5. exec: unshare the cgroup namespace if asked, mark every inherited
//     descriptor close-on-exec, drop to Docker's default capabilities and
//     the user's uid/gid with no_new_privs, and execve the program as the
//     namespace's PID 1. The pipe closes on exec: the supervisor reads
//     end-of-file and Start returns. A failure at any step travels back
//     over the pipe as data (message and errno), so Start's error reads
//     `container "web": exec "/bin/nope": no such file or directory`.
//
// Exec (exec.go) starts a further process inside a running container: the
// parent enters its pid namespace on a locked thread and starts the init
// program with ExecArg from there; that process enters the other namespaces,
// is placed in the container's cgroup and ends through the init's own tail
// (resolveProgram, execProgram), so both are confined alike.
//
// Since every mount lives in the container's mount namespace, the host's
// mount table never changes and a dead container leaves no mount behind:
// cleaning up is removing the layer dir (Container.Cleanup, or RemoveLayer
// without a handle).
//
// Descriptors that are only paths (O_PATH), mounts not yet attached, or
// read-only files are closed without checking the result: their close
// cannot lose data.
package runtime
