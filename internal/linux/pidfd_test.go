package linux

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/stack-containers/stack/internal/testenv"
)

func openPidfd(t *testing.T, pid int) *Pidfd {
	t.Helper()
	p, err := OpenPidfd(pid)
	if errors.Is(err, ErrNoPidfd) {
		t.Skipf("this kernel has no pidfds: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// exited polls p's pidfd without waiting: readable, the process has exited.
func exited(t *testing.T, p *Pidfd) bool {
	t.Helper()
	rc, err := p.f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var (
		readable bool
		perr     error
	)
	if err := rc.Control(func(fd uintptr) { readable, perr = pidfdReadable(fd) }); err != nil {
		t.Fatal(err)
	}
	if perr != nil {
		t.Fatal(perr)
	}
	return readable
}

// TestPidfdWaitsForAnExit: a pidfd turns readable once its process has
// exited, before anyone reaps it, which is what lets a process that is not
// the parent wait for it.
func TestPidfdWaitsForAnExit(t *testing.T) {
	cmd := testenv.StartSleep(t)
	p := openPidfd(t, cmd.Process.Pid)
	if exited(t, p) {
		t.Fatal("the pidfd of a sleeping process is readable")
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(context.Background()); err != nil {
		t.Fatalf("Wait for a killed process: %v", err)
	}
	if !exited(t, p) {
		t.Error("the pidfd is not readable after Wait")
	}
	// Still a zombie, since the test has not reaped it: exited all the same.
	if err := cmd.Wait(); err == nil || cmd.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("the child ended with %v, want killed by SIGKILL", err)
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Errorf("Signal to a reaped process: %v, want nil", err)
	}
}

func TestPidfdWaitEndsWithContext(t *testing.T) {
	p := openPidfd(t, testenv.StartSleep(t).Process.Pid)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Wait(ctx) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Wait after cancel = %v, want context.Canceled", err)
	}
	if err := p.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestOpenPidfdOfAGoneProcess(t *testing.T) {
	cmd := testenv.StartSleep(t)
	pid := cmd.Process.Pid
	cmd.Process.Kill()
	cmd.Wait()
	p, err := OpenPidfd(pid)
	if errors.Is(err, ErrNoPidfd) {
		t.Skipf("this kernel has no pidfds: %v", err)
	}
	if err == nil {
		// The pid was reused meanwhile: nothing to test.
		p.Close()
		t.Skipf("pid %d was reused", pid)
	}
	if !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("OpenPidfd of a reaped process: %v, want os.ErrProcessDone", err)
	}
}
