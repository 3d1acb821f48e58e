//go:build stackinit

package main

import _ "embed"

// initELF is cmd/stack-init, the containers' init, as `make build` builds
// it: the build maps stack-init.elf onto it with -overlay, so that no
// build product lands in the source tree (see the Makefile).
//
//go:embed stack-init.elf
var initELF string
