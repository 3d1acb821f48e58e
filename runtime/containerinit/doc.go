// Package containerinit is the side of a container's init, and of every
// process entering a running container, that runs in the container's
// namespaces: it is what cmd/stack-init links (MaybeInit), and the
// runtime package, the parent's side, imports it for the protocol's
// messages and configurations, and to build most containers in a thread
// of its own with the same code (BuildInThread, inthread.go). It imports
// only the standard library, golang.org/x/sys/unix, internal/linux and
// internal/vfork, and never runtime: every package the init links adds
// its initialisers and pages to the start of every process it starts
// (cmd/stack-init's test checks the list).
//
// A container's init (runInit, on one locked thread, not dumpable):
//
//  1. configuration: read Config from the pipe (PipeFD), in config.go's
//     encoding; its strings and seccomp instructions (Filter) stay views
//     of the message.
//  2. namespaces: join those in Config.Joins (setns), bring lo up in a new
//     network namespace (an ioctl).
//  3. rootfs (rootfs.go, mount.go): every mount inside the container's own
//     mount namespace (overlay or read-only bind root, /dev, /proc with
//     runc's masks, read-only /sys, bind mounts and their copy-up; every
//     target resolved inside the rootfs with openat2 RESOLVE_IN_ROOT and
//     mounted through a descriptor), pivot_root, hostname, workdir, PATH
//     lookup.
//  4. network: with Config.Linked, wait for MsgLinked: the parent has made
//     eth0 in the namespace and configured it from outside.
//  5. placement (Placement): write 0 to the inherited v1 tasks files, or
//     ask the parent to move it (v2), then unshare the cgroup namespace if
//     asked.
//  6. user (identityOf, user.go): the user looked up in the container's
//     own /etc/passwd and /etc/group, its supplementary groups as Docker
//     gives them.
//  7. exec (execProgram): mark every inherited descriptor close-on-exec,
//     a new session keyring, Docker's default capabilities and the user's
//     uid, gid and groups with no_new_privs, the parent-death signal
//     again, the seccomp filter, execve.
//
// A process entering a container (runExec) takes its own filesystem
// context, enters the namespaces the parent opened, joins the cgroup, looks
// its user up in the container's /etc/passwd and /etc/group as the init
// does, gets a terminal of the container's devpts when asked and ends
// through the same execProgram.
//
// A failure at any step is sent over the pipe as data (MsgError and its
// kinds: errno and text), and the process exits: the parent rebuilds it
// and names the container.
//
// Descriptors that are only paths (O_PATH), mounts not yet attached, or
// read-only files are closed without checking the result: their close
// cannot lose data.
package containerinit
