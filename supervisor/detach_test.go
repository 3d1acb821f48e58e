package supervisor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/stack-containers/stack/manifest"
)

// dieEnv makes this test binary, run again by Detach as the supervisor,
// kill itself at once: a supervisor that dies before it reports.
const dieEnv = "STACK_TEST_SUPERVISOR_DIES"

func TestMain(m *testing.M) {
	if os.Getenv(dieEnv) != "" {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
	os.Exit(m.Run())
}

// TestDetachSaysHowTheSupervisorDied: a background supervisor that dies
// before its report is described on one line by how it ended, not by the
// empty report that follows from it ("signal: killed\nEOF").
func TestDetachSaysHowTheSupervisorDied(t *testing.T) {
	t.Setenv(dieEnv, "1")
	st := &manifest.Stack{Name: "dies"}
	err := Detach(st, Config{StateDir: t.TempDir()}, []string{"stack", "-test.run=^$"})
	if err == nil {
		t.Fatal("Detach succeeded with a supervisor that died")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || strings.Contains(msg, "EOF") || !strings.Contains(msg, "killed by SIGKILL") {
		t.Errorf("Detach: %q, want one line saying the supervisor was killed by SIGKILL", msg)
	}
}

// TestReportRoundTrip: the error up -d gets from a report reads as the
// supervisor's and is the sentinel it acts on, ErrRunning before
// fs.ErrPermission when the error is both.
func TestReportRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		err                 error
		running, permission bool
	}{
		{err: errors.New("container \"web\": exit status 1")},
		{err: fmt.Errorf("stack %q: %w", "app", ErrRunning), running: true},
		{err: fmt.Errorf("lock: %w", &fs.PathError{Op: "open", Path: "/state/lock", Err: fs.ErrPermission}), permission: true},
		{err: errors.Join(fs.ErrPermission, ErrRunning), running: true},
	} {
		// As ServeDetached sends it and Supervise reads it.
		var pipe bytes.Buffer
		var r report
		if err := errors.Join(json.NewEncoder(&pipe).Encode(reportOf(tc.err)), json.NewDecoder(&pipe).Decode(&r)); err != nil {
			t.Fatal(err)
		}
		got := r.err()
		if got.Error() != tc.err.Error() || errors.Is(got, ErrRunning) != tc.running || errors.Is(got, fs.ErrPermission) != tc.permission {
			t.Errorf("%q came back as %q, running %v, permission %v; want running %v, permission %v",
				tc.err, got, errors.Is(got, ErrRunning), errors.Is(got, fs.ErrPermission), tc.running, tc.permission)
		}
	}
}
