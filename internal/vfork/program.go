package vfork

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MaxCalls is the most calls a Program may hold: the child's results live
// in a fixed array of this many slots, so that the child indexes it with a
// mask instead of a bounds check.
const MaxCalls = 512

// maxArgs is the most arguments of one system call.
const maxArgs = 6

// Program is a list of system calls for a child to make, then an execve.
// Its zero value is an empty list, ready to use.
type Program struct {
	calls []call
	whats []string // whats[i] names calls[i] in errors
	// keep holds everything the arguments point into, so that the
	// collector frees none of it before the child has used it.
	keep []any

	execSet          bool
	execWhat         string
	path, argv, envp uintptr

	// err is the first mistake of Call or Exec, reported by Start.
	err error
}

// call is one system call as the child makes it. Its arguments are plain
// values, but where bit i of fromSlot is set, args[i] is the index of the
// earlier call whose result the child substitutes.
type call struct {
	trap     uintptr
	args     [maxArgs]uintptr
	fromSlot uintptr
	// tolerate is an errno that does not end the list; 0 tolerates none.
	tolerate uintptr
}

// Slot is a value a call returned (a descriptor), usable as an argument of
// a later call of the same Program.
type Slot struct {
	p     *Program
	index int
}

// Arg is an argument of a call: a plain value (Val) or a Slot.
type Arg interface{ isArg() }

type value uintptr

func (value) isArg() {}
func (Slot) isArg()  {}

// Val is a plain argument.
func Val(v uintptr) Arg { return value(v) }

// Int is a plain argument that may be negative (AT_FDCWD), sign-extended
// as the kernel reads an int.
func Int(v int) Arg { return value(uintptr(v)) }

// Str returns the address of a NUL-terminated copy of s, held by p.
func (p *Program) Str(s string) uintptr {
	b := make([]byte, len(s)+1)
	copy(b, s)
	p.keep = append(p.keep, b)
	return addressOf(b)
}

// Bytes returns the address of b[0], or 0 for an empty b, and holds b.
func (p *Program) Bytes(b []byte) uintptr {
	if len(b) == 0 {
		return 0
	}
	p.keep = append(p.keep, b)
	return addressOf(b)
}

// Keep holds v, a heap value that arguments point into (a
// *unix.CapUserHeader, a *unix.SockFprog and its filter), until Start
// returns.
func (p *Program) Keep(v any) { p.keep = append(p.keep, v) }

// Call appends the system call trap with args. what names it in an error
// ("mount proc on /proc: fsopen"). The returned Slot will hold its return
// value.
func (p *Program) Call(what string, trap uintptr, args ...Arg) Slot {
	return p.CallTolerating(what, 0, trap, args...)
}

// CallTolerating is Call, except that the errno tolerate does not end the
// list (keyctl's ENOSYS where the kernel has no keyrings); the call's slot
// then holds ^uintptr(0).
func (p *Program) CallTolerating(what string, tolerate unix.Errno, trap uintptr, args ...Arg) Slot {
	index := len(p.calls)
	slot := Slot{p: p, index: index}
	if p.err != nil {
		return slot
	}
	if index >= MaxCalls {
		p.err = fmt.Errorf("%s: more than %d calls", what, MaxCalls)
		return slot
	}
	if len(args) > maxArgs {
		p.err = fmt.Errorf("%s: %d arguments, a system call takes at most %d", what, len(args), maxArgs)
		return slot
	}
	c := call{trap: trap, tolerate: uintptr(tolerate)}
	for i, a := range args {
		switch a := a.(type) {
		case value:
			c.args[i] = uintptr(a)
		case Slot:
			// A slot of another Program, or of this call or a later one,
			// would be read before the child wrote it.
			if a.p != p || a.index >= index {
				p.err = fmt.Errorf("%s: argument %d is the slot of a call that does not come before it", what, i+1)
				return slot
			}
			c.args[i] = uintptr(a.index)
			c.fromSlot |= 1 << i
		default:
			p.err = fmt.Errorf("%s: argument %d is neither a value nor a slot", what, i+1)
			return slot
		}
	}
	p.calls = append(p.calls, c)
	p.whats = append(p.whats, what)
	return slot
}

// Exec sets the program the child executes after its calls: path, with
// argv and env.
func (p *Program) Exec(path string, argv, env []string) {
	p.execSet = true
	p.execWhat = "exec " + path
	p.path = p.Str(path)
	p.argv = p.strings(argv)
	p.envp = p.strings(env)
}

// strings returns the address of a NULL-terminated array of addresses of
// NUL-terminated copies of list, all held by p.
func (p *Program) strings(list []string) uintptr {
	addrs := make([]uintptr, len(list)+1)
	for i, s := range list {
		addrs[i] = p.Str(s)
	}
	p.keep = append(p.keep, addrs)
	return addressOf(addrs)
}

// Error is a call of the child that failed, or its execve.
type Error struct {
	What  string // the call's what, or "exec PATH"
	Errno unix.Errno
	// Exec: the execve failed, after every call succeeded.
	Exec bool
}

func (e *Error) Error() string { return e.What + ": " + e.Errno.Error() }

func (e *Error) Unwrap() error { return e.Errno }

// errUnsupported is what Start returns where there is no clone3 assembly.
var errUnsupported = fmt.Errorf("vfork: start a child sharing memory: %w", errors.ErrUnsupported)

// addressOf is the address of s[0], for a system call argument; s must be
// held (in Program.keep) for as long as the address is used.
func addressOf[T any](s []T) uintptr { return uintptr(unsafe.Pointer(&s[0])) }
