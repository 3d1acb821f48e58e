package runtime

import (
	"os"
	"sync"

	"github.com/stack-containers/stack/internal/memexec"
)

// InitProgram is what a container's init, and every process entering a
// container, runs before it execs the user's program: the small program
// cmd/stack-init, which `make build` embeds into the stack binary.
//
// Each of those processes pays its program's start: the Go runtime, the
// package initialisers and the page faults of the binary. The stack
// binary links the image store, the network and cgroup drivers and the
// YAML parser, whose initialisers alone cost a millisecond per start;
// stack-init links only what the init does, and starts in less than half
// the time. Its bytes go once per process into a sealed memfd (package
// memexec), which every start executes from: nothing on disk to find or
// to replace, and nothing a container could write to (a container process
// that reached the init's /proc/PID/exe would find a read-only, sealed
// file).
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

// command returns what a start executes and the descriptors it passes:
// extra (the child's fd 3 onwards, the init pipe first) with the memfd
// after them when there is one (memexec.Executable). The init inherits
// the memfd, and marks it close-on-exec with every other descriptor
// before it execs the program.
func (p *InitProgram) command(extra []*os.File) (string, []*os.File) {
	f := p.file()
	if f == nil {
		return selfExe, extra
	}
	return memexec.Executable(f, extra)
}

func (p *InitProgram) file() *os.File {
	if p == nil {
		return nil
	}
	p.once.Do(func() {
		if f, err := memexec.SealedMemfd("stack-init", p.elf); err == nil {
			p.memfd = f
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
