//go:build !stackinit

package main

// initELF is empty in a plain `go build`: every container's init is this
// binary again (runtime.InitProgram), which works the same and starts
// more slowly. `make build` embeds cmd/stack-init instead.
var initELF string
