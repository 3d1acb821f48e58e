// Package memexec puts a program embedded in the running binary into a
// sealed memfd, from which a child executes it: the containers' init
// (cmd/stack-init), the export program (cmd/stack-export) and the pull
// program (cmd/stack-pull) all run that way, so that the stack binary does
// not pay their packages at its own start.
package memexec

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
)

// SealedMemfd returns a close-on-exec memfd named name that holds data,
// executable and sealed against any change: a program embedded in the
// running binary that can be executed (as /proc/self/fd/N of the child
// that inherits it) with nothing on disk to find or to replace.
func SealedMemfd(name, data string) (*os.File, error) {
	flags := unix.MFD_CLOEXEC | unix.MFD_ALLOW_SEALING
	// MFD_EXEC (Linux 6.3) asks for an executable memfd explicitly, where
	// vm.memfd_noexec would otherwise make it not executable; older
	// kernels refuse the flag they do not know, and make every memfd
	// executable.
	fd, err := unix.MemfdCreate(name, flags|unix.MFD_EXEC)
	if errors.Is(err, unix.EINVAL) {
		fd, err = unix.MemfdCreate(name, flags)
	}
	if err != nil {
		return nil, fmt.Errorf("memfd for %s: %w", name, err)
	}
	if err := fill(fd, data); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("write %s into its memfd: %w", name, err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	// F_SEAL_EXEC (Linux 6.3) also keeps its mode from changing.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals|unix.F_SEAL_EXEC); err != nil {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("seal the memfd of %s: %w", name, err)
		}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// fill writes data to the empty file fd. Data embedded in the binary is
// copied by the kernel from the binary's file (sendfile) rather than
// written from memory: its pages are then never faulted into this
// process, nor counted in a supervisor's footprint, and the copy costs a
// third less. Other data, or a kernel that will not, is written.
func fill(fd int, data string) error {
	if exe, err := unix.Open("/proc/self/exe", unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
		off, ok := executableOffset(exe, data)
		if ok {
			err = sendExecutable(fd, exe, off, len(data))
		}
		unix.Close(exe)
		if ok && err == nil {
			return nil
		}
		if ok {
			// What was sent goes: the write below starts from the beginning.
			if err := unix.Ftruncate(fd, 0); err != nil {
				return err
			}
			if _, err := unix.Seek(fd, 0, 0); err != nil {
				return err
			}
		}
	}
	b := unsafe.Slice(unsafe.StringData(data), len(data))
	for len(b) > 0 {
		n, err := linux.IgnoringEINTRN(func() (int, error) { return unix.Write(fd, b) })
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// sendExecutable copies n bytes at offset off of exe, the running binary's
// file, to fd.
func sendExecutable(fd, exe int, off int64, n int) error {
	for n > 0 {
		sent, err := linux.IgnoringEINTRN(func() (int, error) { return unix.Sendfile(fd, exe, &off, n) })
		if err != nil {
			return err
		}
		if sent == 0 {
			return io.ErrUnexpectedEOF
		}
		n -= sent
	}
	return nil
}

// executableOffset finds data in exe, the running binary's file (open
// from /proc/self/exe): when its bytes lie within one read-only mapping of
// that file (an embedded file, in the binary's image), the offset in the
// file where they are.
func executableOffset(exeFD int, data string) (int64, bool) {
	var exe unix.Stat_t
	if len(data) == 0 || unix.Fstat(exeFD, &exe) != nil {
		return 0, false
	}
	addr := uint64(uintptr(unsafe.Pointer(unsafe.StringData(data))))
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(maps)) {
		// start-end perms offset major:minor inode [path]
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		from, to, ok := strings.Cut(f[0], "-")
		lo, err1 := strconv.ParseUint(from, 16, 64)
		hi, err2 := strconv.ParseUint(to, 16, 64)
		if !ok || err1 != nil || err2 != nil || addr < lo || addr >= hi {
			continue
		}
		off, err3 := strconv.ParseUint(f[2], 16, 64)
		major, minor, ok := strings.Cut(f[3], ":")
		maj, err4 := strconv.ParseUint(major, 16, 32)
		min, err5 := strconv.ParseUint(minor, 16, 32)
		ino, err6 := strconv.ParseUint(f[4], 10, 64)
		if !ok || errors.Join(err3, err4, err5, err6) != nil || addr+uint64(len(data)) > hi || f[1][1] != '-' ||
			ino != exe.Ino || unix.Mkdev(uint32(maj), uint32(min)) != exe.Dev {
			return 0, false
		}
		return int64(off + addr - lo), true
	}
	return 0, false
}

// Executable is how a child executes the program in memfd (as
// SealedMemfd made it): the path to execute, and the descriptors to pass
// it (as exec.Cmd's ExtraFiles), extra as its descriptors 3 onwards and
// the memfd after them, which it is executed by its own number for:
// execve resolves /proc/self/fd/N once the descriptors are in place, while
// the parent's number for the memfd may be taken by one of extra in the
// child, and a child in a user namespace of its own may not read the
// parent's /proc/PID/fd.
func Executable(memfd *os.File, extra []*os.File) (path string, files []*os.File) {
	return "/proc/self/fd/" + strconv.Itoa(3+len(extra)), append(slices.Clip(extra), memfd)
}

// Command is the command that executes the program in memfd as name,
// passing it extra (see Executable).
func Command(memfd *os.File, name string, extra ...*os.File) *exec.Cmd {
	path, files := Executable(memfd, extra)
	return &exec.Cmd{Path: path, Args: []string{name}, ExtraFiles: files}
}

// Start starts the program in memfd as name with two pipes to talk over:
// the program reads requests on its descriptor 3 and writes replies on
// 4, and the caller gets the other ends, which it closes. setup, when not
// nil, sets the command's other fields (stdio, SysProcAttr) first. The
// program's ends are closed here once it has started, so that either
// side's end of a pipe reads as EOF once the other is gone.
func Start(memfd *os.File, name string, setup func(*exec.Cmd)) (cmd *exec.Cmd, requests, replies *os.File, err error) {
	requestsR, requests, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, err
	}
	repliesR, repliesW, err := os.Pipe()
	if err != nil {
		requestsR.Close()
		requests.Close()
		return nil, nil, nil, err
	}
	cmd = Command(memfd, name, requestsR, repliesW)
	if setup != nil {
		setup(cmd)
	}
	err = cmd.Start()
	requestsR.Close()
	repliesW.Close()
	if err != nil {
		requests.Close()
		repliesR.Close()
		return nil, nil, nil, err
	}
	return cmd, requests, repliesR, nil
}
