package main

import "github.com/stack-containers/stack/image/pull"

// pullImage is the image.Puller of stack: the pull in this process.
var pullImage = pull.Image
