package containerinit

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
)

// Filter is a seccomp filter as it crosses the pipe in the configuration
// (config.go): its flags, as the seccomp package's Program has them, and
// its instructions as the bytes Program.Encode makes (struct sock_filter,
// 8 bytes each, little-endian). The init decodes them itself
// (program): the compiler and its tables (the seccomp package) stay out
// of the init program.
type Filter struct {
	// Flags are SECCOMP_FILTER_FLAG_* bits.
	Flags uint
	// Instructions are Program.Encode's bytes.
	Instructions []byte
}

// install loads the filter on the calling thread
// (linux.InstallSeccompFilter, which seccomp.Program.Install calls too).
func (f *Filter) install() error {
	prog, err := f.program()
	if err != nil {
		return err
	}
	return linux.InstallSeccompFilter(f.Flags, prog)
}

// program is the filter's instructions as the kernel takes them.
func (f *Filter) program() ([]unix.SockFilter, error) {
	raw := f.Instructions
	if len(raw) == 0 || len(raw)%8 != 0 || len(raw)/8 > 0xffff {
		return nil, fmt.Errorf("seccomp: a program of %d bytes is not whole instructions", len(raw))
	}
	prog := make([]unix.SockFilter, len(raw)/8)
	for i := range prog {
		b := raw[8*i:]
		prog[i] = unix.SockFilter{Code: binary.LittleEndian.Uint16(b), Jt: b[2], Jf: b[3], K: binary.LittleEndian.Uint32(b[4:])}
	}
	return prog, nil
}
