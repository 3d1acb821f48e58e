package supervisor

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// startShell runs sh -c script as a child of the test and reaps it at the
// end of the test.
func startShell(t *testing.T, script string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// The script says "ready" once its traps are set.
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil || !strings.HasPrefix(string(buf), "ready") {
		t.Fatalf("child did not get ready: %q, %v", buf, err)
	}
	return cmd
}

func TestProcessIdentity(t *testing.T) {
	self, err := processOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !self.Alive() || self.Start == 0 {
		t.Fatalf("own process %+v not alive", self)
	}
	if (Process{Pid: self.Pid, Start: self.Start + 1}).Alive() {
		t.Error("a different start time is taken for the same process")
	}

	cmd := startShell(t, "echo ready; exec sleep 100")
	p, err := processOf(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if p.Alive() {
		t.Error("killed and reaped process still alive")
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("signal to a gone process: %v", err)
	}
}

func TestSignalDiscarded(t *testing.T) {
	cmd := startShell(t, `trap "" USR1; trap "echo got" USR2; echo ready; while :; do sleep 1; done`)
	pid := cmd.Process.Pid
	for _, tc := range []struct {
		sig         syscall.Signal
		init, wantD bool
	}{
		{syscall.SIGUSR1, false, true}, // ignored
		{syscall.SIGUSR1, true, true},
		{syscall.SIGUSR2, false, false}, // caught
		{syscall.SIGUSR2, true, false},
		{syscall.SIGTERM, false, false}, // default action kills
		{syscall.SIGTERM, true, true},   // a namespace's init without a handler
		{syscall.SIGKILL, true, false},
	} {
		got, err := signalDiscarded(pid, tc.sig, tc.init)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.wantD {
			t.Errorf("%v (pid namespace init %v): discarded = %v, want %v", tc.sig, tc.init, got, tc.wantD)
		}
	}
	if _, err := signalDiscarded(1<<22+12345, syscall.SIGTERM, true); err == nil {
		t.Error("no error for a missing pid")
	}
}
