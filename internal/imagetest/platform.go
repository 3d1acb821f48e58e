package imagetest

import (
	"io"
	"log"
	"runtime"
)

func hostArch() string { return runtime.GOARCH }

// OtherArch is an architecture that is not the host's.
func OtherArch() string {
	if runtime.GOARCH == "s390x" {
		return "ppc64le"
	}
	return "s390x"
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }
