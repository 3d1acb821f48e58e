package runtime

import (
	"io"
	"syscall"

	"github.com/stack-containers/stack/network"
	"github.com/stack-containers/stack/runtime/containerinit"
	"github.com/stack-containers/stack/seccomp"
)

// Spec is everything needed to start one container. The supervisor builds
// it from a manifest.Container; runtime makes no policy decisions.
type Spec struct {
	// Name is the container's name, used in every error.
	Name string
	// Init is the program the container's init runs; nil re-executes
	// the running binary (see InitProgram).
	Init *InitProgram
	// Rootfs is the root filesystem, an absolute path of a directory
	// that the container never changes.
	Rootfs string
	// Layers, when set, are the root filesystem instead: an image's
	// unpacked layers, bottom first, stacked as the overlay's lower
	// directories and shared with every container of the image.
	Layers []string
	// Args is the command; Args[0] is resolved inside the container
	// against PATH when it has no slash.
	Args []string
	// Env is KEY=VALUE; a default PATH is added when missing.
	Env      []string
	Workdir  string
	Hostname string
	// User, when not empty, is uid[:gid] or user[:group], looked up in
	// the container's own /etc/passwd and /etc/group once its root is
	// built: the uid, the gid, and the supplementary groups as Docker
	// gives them (the gid, and without an explicit group every group
	// whose member list names the user). When empty, UID and GID are
	// used, with GID the only group.
	User     string
	UID, GID uint32
	// Caps is the program's capability set, in internal/capability's
	// canonical names; nil means Docker's default set, an empty list none.
	Caps []string
	// Seccomp is the profile the program runs under; nil means Docker's
	// default, seccomp.Unconfined() none. It is resolved against Caps.
	Seccomp *seccomp.Profile
	// Namespaces are created new: "pid", "mount", "uts", "ipc", "net",
	// "user", "cgroup". "mount" is always among them.
	Namespaces []string
	// Join maps "net", "ipc" or "uts" to the pid of a running process whose
	// namespace the container enters (/proc/PID/ns/...).
	Join     map[string]int
	ReadOnly bool
	Mounts   []Mount
	// LayerDir is a directory of the container's own under the state dir
	// (created if needed): it holds the writable overlay layer and is
	// removed by Cleanup. Its parent must be the container's own too: the
	// overlay's work directory is made there beside it, as "work"
	// (containerinit.WorkDir), and removed with it.
	LayerDir string
	// Cgroup, when not nil, receives the user's program before it runs, so
	// that its memory is charged there and the init's is not.
	Cgroup Cgroup
	// ParentDeathSignal, when not 0, is the signal the kernel sends the
	// container's PID 1 when the process that started it dies
	// (PR_SET_PDEATHSIG; it must be set again after the init changes its
	// credentials, which clears it). The supervisor asks for SIGKILL: a
	// container that outlived it would have nobody to read its output or
	// apply its restart policy.
	ParentDeathSignal syscall.Signal
	// Interface, when not nil, is the container's place on a network
	// (network.Interface): its veth pair is made once the new net
	// namespace exists ("net" must be among Namespaces), and its end
	// there becomes eth0.
	Interface *network.Interface
	// Stdout and Stderr receive the program's output; nil means /dev/null.
	// An *os.File is passed through as is.
	Stdout, Stderr io.Writer
}

// Cgroup is what the runtime needs of a container's cgroup: to place the
// init in it, and its path for errors. The supervisor passes the cgroup
// package's; tests may pass their own.
type Cgroup interface {
	AddProc(pid int) error
	Path() string
}

// Mount is a bind mount from the host into the container; the init
// makes it, so the type is its package's.
type Mount = containerinit.Mount

// ExitStatus says how a container's PID 1 ended.
type ExitStatus struct {
	// Code is the exit code, or 128+signal when Signaled.
	Code     int
	Signaled bool
	Signal   syscall.Signal
}
