//go:build !linux || !(amd64 || arm64)

package vfork

// Supported says whether Start can start a child here.
const Supported = false

// Start returns an error that wraps errors.ErrUnsupported: there is no
// clone3 assembly for this architecture.
func (p *Program) Start(flags uint64, cgroupFD int) (pid, pidfd int, err error) {
	return -1, -1, errUnsupported
}
