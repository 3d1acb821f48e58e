package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
)

// InitProgram is what a container's init, and every process entering a
// container, runs before it execs the user's program: the small program
// cmd/stack-init, which `make build` embeds into the stack binary.
//
// Each of those processes pays its program's start: the Go runtime, the
// package initialisers and the page faults of the binary. The stack
// binary links the image store, the Kubernetes API types and the YAML
// parser, whose initialisers alone cost a few milliseconds per start;
// stack-init links only what the init does, and starts in less than half
// the time. Its bytes go once per process into a sealed memfd, which every
// start executes from: nothing on disk to find or to replace, and nothing
// a container could write to (a container process that reached the
// init's /proc/PID/exe would find a read-only, sealed file).
//
// A nil *InitProgram, or one whose memfd cannot be made (a kernel with
// vm.memfd_noexec=2, say), re-executes the running binary (/proc/self/exe)
// instead, whose main calls containerinit.MaybeInit first: the same code, started more
// slowly. Tests run that way, their test binary being the init.
type InitProgram struct {
	elf  string
	once sync.Once
	// memfd is the sealed memfd, or nil when there is none.
	memfd *os.File
}

// NewInitProgram returns the init program whose ELF image is elf; an empty
// elf is a nil *InitProgram. The memfd is only made on the first start, so
// a command that starts nothing pays nothing for it.
func NewInitProgram(elf string) *InitProgram {
	if elf == "" {
		return nil
	}
	return &InitProgram{elf: elf}
}

// initEnv is the environment of the init itself; the program it execs
// gets its own (containerinit.Process.Env). One P and no collector: the
// init is one goroutine on one locked thread that allocates little and
// execs within milliseconds. GOMAXPROCS set does not spare the Go runtime
// reading the cgroup's CPU limit at start (runtime.defaultGOMAXPROCSInit
// opens the cgroup files whatever GOMAXPROCS and GODEBUG say, in Go
// 1.26); it only keeps sysmon from reading the limit again while the init
// runs, which it would do after a second.
func initEnv() []string { return []string{"GOMAXPROCS=1", "GOGC=off"} }

// selfExe is the running binary, as the kernel keeps it open.
const selfExe = "/proc/self/exe"

// command returns what a start executes and the descriptors it passes,
// extra (which become the child's fd 3 onwards) with the memfd after them
// when there is one. The memfd is named by the child's own descriptor:
// execve resolves /proc/self/fd/N before it closes anything, while the
// supervisor's number for it may be taken by one of extra in the child,
// and a child in a user namespace of its own may not read the
// supervisor's /proc/PID/fd. The init inherits it, and marks it
// close-on-exec with every other descriptor before it execs the program.
func (p *InitProgram) command(extra []*os.File) (string, []*os.File) {
	f := p.file()
	if f == nil {
		return selfExe, extra
	}
	return "/proc/self/fd/" + strconv.Itoa(initPipeFD+len(extra)), append(slices.Clip(extra), f)
}

func (p *InitProgram) file() *os.File {
	if p == nil {
		return nil
	}
	p.once.Do(func() {
		if fd, err := sealedMemfd("stack-init", p.elf); err == nil {
			p.memfd = os.NewFile(uintptr(fd), "stack-init")
		}
	})
	return p.memfd
}

// Preload makes the memfd now, on a goroutine of its own that ends once
// it is made, rather than on the first start: copying the image costs a
// few milliseconds (its pages of shared memory), which a supervisor can
// spend while it prepares the stack instead of before its first
// container's clone.
func (p *InitProgram) Preload() {
	if p != nil {
		go p.file()
	}
}

// embedded reports whether starts execute the embedded program, rather
// than the running binary.
func (p *InitProgram) embedded() bool { return p.file() != nil }

// sealedMemfd returns a close-on-exec memfd named name that holds data,
// executable and sealed against any change.
func sealedMemfd(name, data string) (int, error) {
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
		return -1, fmt.Errorf("memfd for %s: %w", name, err)
	}
	if err := fill(fd, data); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("write %s into its memfd: %w", name, err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	// F_SEAL_EXEC (Linux 6.3) also keeps its mode from changing.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals|unix.F_SEAL_EXEC); err != nil {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("seal the memfd of %s: %w", name, err)
		}
	}
	return fd, nil
}

// fill writes data to the empty file fd. Data embedded in the binary is
// copied by the kernel from the binary's file (sendfile) rather than
// written from memory: its pages are then never faulted into this
// process, nor counted in a supervisor's footprint, and the copy costs a
// third less. Other data, or a kernel that will not, is written.
func fill(fd int, data string) error {
	if off, ok := executableOffset(data); ok {
		if err := sendExecutable(fd, off, len(data)); err == nil {
			return nil
		}
		// What was sent goes: the write below starts from the beginning.
		if err := unix.Ftruncate(fd, 0); err != nil {
			return err
		}
		if _, err := unix.Seek(fd, 0, 0); err != nil {
			return err
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

// sendExecutable copies n bytes at offset off of the running binary's file
// to fd.
func sendExecutable(fd int, off int64, n int) error {
	exe, err := unix.Open("/proc/self/exe", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(exe)
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

// executableOffset finds data in the running binary's file: when its bytes
// lie within one read-only mapping of the file /proc/self/exe names (an
// embedded file, in the binary's image), the offset in the file where they
// are.
func executableOffset(data string) (int64, bool) {
	var exe unix.Stat_t
	if len(data) == 0 || unix.Stat("/proc/self/exe", &exe) != nil {
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
