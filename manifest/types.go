package manifest

import (
	"syscall"
	"time"

	"github.com/stack-containers/stack/seccomp"
)

// Stack is a loaded, validated and normalized manifest: every default is
// filled in and every path is absolute.
type Stack struct {
	// Name is the stack's name: the manifest's `name`, or the manifest
	// directory's name lower-cased with invalid characters replaced by '-'.
	Name string
	// File is the absolute path of the manifest the stack was loaded from.
	File string
	// Volumes are the names of the stack's named volumes, sorted.
	Volumes []string
	// Containers maps a container's name to its definition.
	Containers map[string]*Container
	// Network is the stack network's configuration.
	Network Network
}

// Namespace is the name of a Linux namespace as written in a manifest.
type Namespace string

// The namespaces a manifest can name.
const (
	NamespacePID    Namespace = "pid"
	NamespaceMount  Namespace = "mount"
	NamespaceUTS    Namespace = "uts"
	NamespaceIPC    Namespace = "ipc"
	NamespaceNet    Namespace = "net"
	NamespaceUser   Namespace = "user"
	NamespaceCgroup Namespace = "cgroup"
)

// Container is one normalized container definition.
type Container struct {
	Name string
	// Rootfs is the absolute path of a directory or a .tar/.tar.gz/.tgz
	// archive; "" when Image is set.
	Rootfs string
	// Image is the image instead of a rootfs, as image.Source writes it
	// (docker.io/library/nginx:latest, oci:/abs/dir:tag).
	Image string
	// PullPolicy says when Image is pulled; "" with Rootfs.
	PullPolicy PullPolicy
	// Entrypoint replaces the image's; nil keeps it.
	Entrypoint []string
	// Command is the program and its arguments; never empty with Rootfs.
	// With Image it replaces the image's Cmd (nil keeps it), after the
	// entrypoint, as in Compose.
	Command []string
	// Env holds the environment the user asked for (no defaults added).
	Env map[string]string
	// Workdir is an absolute path inside the container; default "/", or
	// "" (the image's, else "/") with Image.
	Workdir string
	// Hostname defaults to the container's name.
	Hostname string
	// User is the user as written ("" when not set: 0:0, or the image's
	// user). When it has names, UID and GID are found in the container's
	// /etc/passwd and /etc/group as it starts; else they are its numbers.
	User     string
	UID, GID uint32
	// Namespaces are created new for the container, in canonical order
	// (pid, mount, uts, ipc, net, user, cgroup); mount is always present.
	Namespaces []Namespace
	// Join maps a namespace (net, ipc or uts) to the container whose
	// namespace is shared instead of creating one.
	Join map[Namespace]string
	// Memory is the memory limit in bytes; 0 means none.
	Memory int64
	// CPUs is the CPU quota in cores; 0 means none.
	CPUs float64
	// Pids is the maximum number of processes; 0 means none.
	Pids    int64
	Restart RestartPolicy
	// DependsOn lists the containers started before this one, sorted.
	DependsOn []string
	// Conditions says what this one waits for of each of DependsOn
	// before it starts; a name missing from it is ConditionStarted.
	Conditions map[string]Condition
	// Healthcheck is nil without one.
	Healthcheck *Healthcheck
	StopSignal  syscall.Signal
	StopTimeout time.Duration
	ReadOnly    bool
	Mounts      []Mount
	// Network is stack (the default) or none for a container with a net
	// namespace of its own, and "" for one without.
	Network NetworkMode
	// Ports are the published ports, one per port (ranges expanded).
	Ports []Port
	// CapAdd and CapDrop change Docker's default capability set; names
	// are canonical ("CAP_NET_ADMIN") or "ALL".
	CapAdd, CapDrop []string
	// Seccomp is "default", "unconfined" or the absolute path of a
	// profile; SeccompProfile is what it names, checked and ready.
	Seccomp        string
	SeccompProfile *seccomp.Profile
}

// PullPolicy is when an image is pulled.
type PullPolicy string

// The pull policies.
const (
	PullMissing PullPolicy = "missing"
	PullAlways  PullPolicy = "always"
	PullNever   PullPolicy = "never"
)

// Policy is a restart policy's name.
type Policy string

// The restart policies.
const (
	RestartNo        Policy = "no"
	RestartOnFailure Policy = "on-failure"
	RestartOnOOM     Policy = "on-oom"
	RestartAlways    Policy = "always"
)

// RestartPolicy says when and how fast a container that ended is started again.
type RestartPolicy struct {
	Policy Policy
	// MaxRetries is the number of restarts allowed; 0 means unlimited.
	MaxRetries int
	// Backoff is the first delay; it doubles per consecutive restart.
	Backoff time.Duration
	// MaxBackoff caps the delay.
	MaxBackoff time.Duration
}

// Mount is a bind mount from the host, or a named volume, into the
// container.
type Mount struct {
	// Source is the absolute host path of a bind mount ("~" expanded);
	// empty for a named volume. It may not exist yet: up creates it.
	Source string
	// Volume is the name of a named volume of the stack; empty for a bind
	// mount.
	Volume string
	// Target is the absolute path inside the container.
	Target   string
	ReadOnly bool
}
