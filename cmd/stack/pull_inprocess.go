//go:build !stackinit

package main

import "github.com/stack-containers/stack/image/pull"

// pullImage is the image.Puller of a plain `go build`: the pull in this
// process, whose registry client stack then links, where `make build`
// embeds the pull program instead (see pull_program.go).
var pullImage = pull.Image
