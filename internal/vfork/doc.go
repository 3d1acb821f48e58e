// Package vfork starts a process that makes a prepared list of raw system
// calls and then executes a program, without a Go runtime in between: the
// child is created with clone3(CLONE_VM|CLONE_VFORK), so it runs in the
// parent's memory and on the calling goroutine's stack until its execve,
// the way the standard library's syscall.forkAndExecInChild does, but with
// the caller's own list of calls (mounts, credentials, seccomp, descriptor
// moves) instead of the fixed one of syscall.SysProcAttr. Nothing is copied
// and no second Go program starts and exits per process.
//
// # Building and starting
//
// A Program collects calls in the parent: Call appends one with its
// arguments, each a plain value (Val) or the Slot of an earlier call, whose
// return value (a descriptor, say) the child substitutes when it gets
// there. Str, Bytes and Keep hold the memory that arguments point into.
// Exec names the program to execute after the calls. Start checks
// everything, creates the child and returns once the child has executed
// its program, or has failed: then the error says which call and errno, and
// the child has been reaped.
//
// # Rules the child lives by
//
// Between clone3 and execve the child shares the parent's memory, runs on
// the parent thread's goroutine stack, below the frame that called clone3,
// and must never enter the Go runtime: the runtime believes that goroutine
// is still running on its own thread and knows nothing of a second task.
// So the child's code is //go:nosplit (a stack check could call morestack
// and move the stack; the linker instead proves that the nosplit chain
// fits in the stack's guard area), //go:norace and //go:nocheckptr (no
// instrumentation calls), and it stores only plain integers (no write
// barriers), allocates nothing, panics on nothing (every index and count is
// checked by Start before clone3, and the child's indices are masked so
// the compiler emits no bounds checks), and calls nothing but other such
// functions and syscall.RawSyscall6.
//
// The clone3 itself is a few lines of assembly that keep their return
// address in a register across the system call: on amd64 the child
// returns first, and its later calls overwrite the stack word that held the
// return address, so the parent, resuming after the child's execve, would
// return through whatever the child left there. (On arm64 the return
// address is in the link register to begin with.) On other architectures
// Start returns an error that wraps errors.ErrUnsupported, and the caller
// falls back to another way of starting.
//
// Start blocks every signal on the calling thread around clone3 and the
// child inherits that mask: a signal delivered to the child would run one
// of the parent's Go handlers in the shared memory, with no runtime behind
// it (it would, for example, hand the signal to the parent's
// signal.Notify channel from the child). The child then sets SIG_DFL for every signal that has a handler
// (SIG_IGN stays ignored, as execve from a Go parent would leave it), runs
// the calls, and sets an empty mask right before execve, so that the
// program starts with nothing blocked and no Go handler installed.
//
// # What the caller must know
//
//   - The caller runs on a goroutine locked to its thread
//     (runtime.LockOSThread): the child inherits that thread's namespaces,
//     credentials, root, working directory and umask.
//   - The child has its own copy of the descriptor table: every descriptor
//     of the parent without O_CLOEXEC reaches the program. Start closes
//     nothing; the caller adds close_range and dup3 calls.
//   - Arguments that point to memory point to heap memory held by the
//     Program (Str, Bytes, Keep), never to the caller's stack variables:
//     the child's stack frames overwrite the stack below the caller, and a
//     stack can move when its goroutine grows it. The Go collector does not
//     move heap objects, and Start keeps the Program reachable until the
//     child has executed its program.
//   - While the child runs, the parent's thread is in a system call the
//     runtime knows of (entersyscall, as syscall.Syscall makes): its P goes
//     to other goroutines, and a stop-the-world of the collector does not
//     wait for the child. The child's frames lie below the stack pointer
//     the runtime saved, which is where the collector's scan of the
//     parent's stack begins, and they hold plain integers only. Still,
//     keep the list short (tens to a hundred calls, about a millisecond):
//     the calling thread is the child's until it executes or exits.
//   - The child shares the parent's memory until execve, so nothing
//     untrusted may ptrace it: the caller makes the process non-dumpable
//     (prctl(PR_SET_DUMPABLE, 0)) before starting children into namespaces
//     or cgroups shared with untrusted processes.
//   - Calls that need a task with its own memory (unshare(CLONE_NEWUSER),
//     which refuses a task sharing its memory) fail in the child; pass
//     namespaces as clone flags to Start instead.
//   - Memory written by the child is shared, but the child's own
//     credentials, namespaces, signal dispositions and descriptor table are
//     its own (no CLONE_THREAD, CLONE_SIGHAND, CLONE_FILES or CLONE_FS,
//     which Start refuses).
package vfork
