package seccomp

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// onFilteredThread runs f on a thread of its own with prog installed; the
// thread ends with the goroutine (it stays locked), and the filter with it.
func onFilteredThread(b *testing.B, prog *Program, f func()) time.Duration {
	b.Helper()
	done := make(chan error, 1)
	var took time.Duration
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with us
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			done <- err
			return
		}
		start := time.Now()
		err := prog.Install()
		took = time.Since(start)
		if err == nil {
			f()
		}
		done <- err
	}()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return took
}

// programs are the default profile under Docker's capabilities compiled
// by the linear reference and by the compiler.
func programs(b *testing.B) map[string]*Program {
	ls, err := Default().resolve(dockerCaps)
	if err != nil {
		b.Fatal(err)
	}
	lin, err := compileLinear(ls, runtime.GOARCH)
	if err != nil {
		b.Fatal(err)
	}
	tree, err := compile(ls, runtime.GOARCH)
	if err != nil {
		b.Fatal(err)
	}
	return map[string]*Program{"linear": lin, "tree": tree}
}

// BenchmarkInstall is what seccomp(2) costs a container's init: the
// kernel checks, converts and JITs the program.
func BenchmarkInstall(b *testing.B) {
	for name, prog := range programs(b) {
		b.Run(name, func(b *testing.B) {
			var total time.Duration
			for range b.N {
				total += onFilteredThread(b, prog, func() {})
			}
			b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/install")
			b.ReportMetric(float64(len(prog.Filter)), "insns")
		})
	}
}

// BenchmarkSyscall is a syscall under the filter. getppid is allowed
// whatever its arguments, which the kernel (5.11 on) caches without
// running the filter; personality has argument checks and io_uring_setup
// is refused, so the filter runs for both.
func BenchmarkSyscall(b *testing.B) {
	calls := map[string][3]uintptr{
		"getppid":        {unix.SYS_GETPPID},
		"personality":    {unix.SYS_PERSONALITY, 0xffffffff},
		"io_uring_setup": {unix.SYS_IO_URING_SETUP, 1},
	}
	for name, prog := range programs(b) {
		for call, c := range calls {
			b.Run(name+"/"+call, func(b *testing.B) {
				onFilteredThread(b, prog, func() {
					b.ResetTimer()
					for range b.N {
						unix.RawSyscall(c[0], c[1], c[2], 0)
					}
					b.StopTimer()
				})
			})
		}
	}
}

// BenchmarkCompile is the compilation of the default profile under
// Docker's capabilities for this machine, as a container's first start
// pays it (Compile remembers the program for later ones): mostly looking
// up the profile's syscall names in the tables.
func BenchmarkCompile(b *testing.B) {
	ls, err := Default().resolve(dockerCaps)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for range b.N {
		if _, err := compile(ls, runtime.GOARCH); err != nil {
			b.Fatal(err)
		}
	}
}
