// Command probe tries, from inside a container, what the security tests
// check: each subcommand makes raw system calls (so that the answer is the
// kernel's and its filters', not a library's fallback) and prints one
// "NAME: RESULT" line per attempt, RESULT being "ok" or the errno's name.
// It is built static and copied into a test rootfs, which has no tools of
// its own for most of this.
//
//	probe node PATH c|b MAJOR MINOR   mknod PATH, then open it
//	probe open PATH...                open each existing node for reading and writing
//	probe pty                         open /dev/ptmx and the pts it gives
//	probe syscalls                    keyctl, add_key, io_uring_setup, personality, clone with namespaces
//	probe cgroup-escape DIR           in a new user, mount and cgroup namespace, mount
//	                                  the v1 memory and pids hierarchies on DIR and lift the limits
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe node|open|pty|syscalls|cgroup-escape ...")
		os.Exit(2)
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "node":
		node(args)
	case "open":
		for _, p := range args {
			report("open "+p, openErr(p, unix.O_RDWR))
		}
	case "pty":
		pty()
	case "syscalls":
		syscalls()
	case "cgroup-escape":
		cgroupEscape(args[0])
	case "cgroup-escape-child":
		cgroupEscapeChild(args[0])
	default:
		fmt.Fprintln(os.Stderr, "probe: unknown subcommand", os.Args[1])
		os.Exit(2)
	}
}

func report(name string, err error) {
	result := "ok"
	var errno unix.Errno
	switch {
	case errors.As(err, &errno):
		result = unix.ErrnoName(errno)
	case err != nil:
		result = err.Error()
	}
	fmt.Printf("%s: %s\n", name, result)
}

func atoi(s string) uint32 {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(2)
	}
	return uint32(n)
}

func openErr(path string, flags int) error {
	fd, err := unix.Open(path, flags|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err == nil {
		unix.Close(fd)
	}
	return err
}

// node makes a device node and opens it: a block device for reading (a
// host disk), a character device for writing.
func node(args []string) {
	path, kind, major, minor := args[0], args[1], atoi(args[2]), atoi(args[3])
	mode, flags := uint32(unix.S_IFCHR), unix.O_WRONLY
	if kind == "b" {
		mode, flags = unix.S_IFBLK, unix.O_RDONLY
	}
	report("mknod", unix.Mknod(path, mode|0o666, int(unix.Mkdev(major, minor))))
	report("open", openErr(path, flags))
}

func pty() {
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	report("open /dev/ptmx", err)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		report("unlock", err)
		return
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		report("pts number", err)
		return
	}
	report("open /dev/pts/N", openErr(fmt.Sprintf("/dev/pts/%d", n), unix.O_RDWR|unix.O_NOCTTY))
}

func raw(nr uintptr, a ...uintptr) (uintptr, error) {
	var args [6]uintptr
	copy(args[:], a)
	r, _, e := unix.RawSyscall6(nr, args[0], args[1], args[2], args[3], args[4], args[5])
	if e != 0 {
		return r, e
	}
	return r, nil
}

func cstr(s string) uintptr {
	p, _ := unix.BytePtrFromString(s)
	return uintptr(unsafe.Pointer(p))
}

// keySpecSessionKeyring is KEY_SPEC_SESSION_KEYRING (-3) as an argument.
const keySpecSessionKeyring = ^uintptr(2)

func syscalls() {
	id, err := raw(unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, keySpecSessionKeyring, 0)
	report("keyctl", err)
	if err == nil {
		fmt.Printf("session keyring: %d\n", int32(id))
	}
	_, err = raw(unix.SYS_ADD_KEY, cstr("user"), cstr("stack-probe"), cstr("x"), 1, keySpecSessionKeyring)
	report("add_key", err)
	var params [120]byte // struct io_uring_params
	fd, err := raw(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params[0])))
	report("io_uring_setup", err)
	if err == nil {
		unix.Close(int(fd))
	}
	// 0x0040000 is ADDR_NO_RANDOMIZE; 0xffffffff only queries.
	_, err = raw(unix.SYS_PERSONALITY, 0xffffffff)
	report("personality query", err)
	_, err = raw(unix.SYS_PERSONALITY, 0x0040000)
	report("personality ADDR_NO_RANDOMIZE", err)
	raw(unix.SYS_PERSONALITY, 0)
	// Through clone, as `unshare -U` does in a single-threaded process:
	// a Go program cannot unshare a user namespace once it has threads.
	cmd := exec.Command("/proc/self/exe", "open")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
	report("clone user namespace", cmd.Run())
}

// cgroupEscape is what an attacker without a seccomp filter could do: a
// child in new user, mount and cgroup namespaces has every capability
// there, mounts cgroupfs and writes its own cgroup's limits.
func cgroupEscape(dir string) {
	cmd := exec.Command("/proc/self/exe", "cgroup-escape-child", dir)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWCGROUP,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
	}
	report("clone user, mount and cgroup namespaces", cmd.Run())
}

func cgroupEscapeChild(dir string) {
	for _, ctrl := range []struct{ name, file, value string }{
		{"memory", "memory.limit_in_bytes", "-1"},
		{"pids", "pids.max", "max"},
	} {
		target := dir + "/" + ctrl.name
		if err := os.MkdirAll(target, 0o755); err != nil {
			report("mkdir "+target, err)
			continue
		}
		err := unix.Mount("cgroup", target, "cgroup", 0, ctrl.name)
		report("mount "+ctrl.name, err)
		if err == nil {
			report("write "+ctrl.file, os.WriteFile(target+"/"+ctrl.file, []byte(ctrl.value), 0))
		}
	}
}
