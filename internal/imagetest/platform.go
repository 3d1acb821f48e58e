package imagetest

import (
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
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

// listenIn listens on 127.0.0.1 of the network namespace at netns: the
// socket is made on a thread that enters the namespace and then returns
// to its own. The thread is not retired instead, since a child another
// test started from it with a parent-death signal would die with it; a
// thread that could not return is retired (its goroutine ends locked).
func listenIn(netns string) (net.Listener, error) {
	type result struct {
		l   net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		own, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer own.Close()
		target, err := os.Open(netns)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("setns: %w", err)}
			return
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if unix.Setns(int(own.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- result{l, err}
	}()
	r := <-done
	return r.l, r.err
}
