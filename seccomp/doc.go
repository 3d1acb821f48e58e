// Package seccomp turns a seccomp profile in Docker's JSON format into a
// classic BPF filter for this machine and installs it.
//
//  1. Parse reads a profile (Default is Docker's own, as data from
//     github.com/moby/profiles/seccomp) and checks every action, operator,
//     flag and argument index, so that a bad profile is refused before
//     anything starts.
//  2. Compile resolves the profile for one container, as Docker does: a
//     rule that includes or excludes capabilities, architectures or kernel
//     versions is kept or dropped against the container's capabilities and
//     this host. It then compiles the rules for the native architecture and
//     the 32-bit one the profile lists beside it (i386 on x86_64, arm on
//     arm64), with syscall numbers from the kernel's tables as
//     github.com/elastic/go-seccomp-bpf/arch holds them, which go generate
//     copies into syscalls_gen.go as static data (that package's
//     initialiser would cost every process of stack a third of a
//     millisecond). A syscall name this machine's table does not know is
//     skipped, as runc does. Any other architecture, and the x32 ABI, end
//     the process: no profile was written for them.
//  3. Install loads the program on the calling thread (no_new_privs must be
//     set, or the thread must hold CAP_SYS_ADMIN); execve keeps it.
//
// # The program
//
//	check the architecture, pick the syscall table
//	binary search of the syscall number over runs of consecutive
//	  numbers with one outcome (JGE on each run's first number)
//	the outcomes: return an action (the default, a rule's), or
//	rules_N: for each rule with argument checks, in order:
//	           every check holds ? return its action
//	         return the unconditional rule's action, else the default
//
// A lookup takes log2(runs) jumps, and the program is about twice as long
// as the number of runs plus the argument checks: Docker's profile, whose
// allowed syscalls are mostly long runs, is some 500 instructions rather
// than the 2300 of one comparison per syscall, which the kernel converts
// and JITs on every container's start. A conditional jump reaches 255
// instructions; the assembler puts an unconditional one after a jump that
// must go further.
//
// Arguments are 64 bits and classic BPF compares 32, so each check compares
// the high word first, then the low one (seccomp_data is in the machine's
// byte order, little-endian on every architecture supported here). Syscalls
// that the profile allows whatever their arguments cost almost nothing:
// the kernel (5.11 and later) caches the verdict per syscall number for
// them and does not run the filter at all.
package seccomp
