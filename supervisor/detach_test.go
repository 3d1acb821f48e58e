package supervisor

import (
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
