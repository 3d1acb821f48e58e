package seccomp

import "github.com/stack-containers/stack/internal/linux"

// Install loads the program on the calling thread (see
// linux.InstallSeccompFilter).
func (p *Program) Install() error { return linux.InstallSeccompFilter(p.Flags, p.Filter) }
