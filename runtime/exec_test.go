package runtime

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stack-containers/stack/internal/testenv"
)

// startSleeper starts a container that runs until the test ends.
func startSleeper(t *testing.T) *Container {
	t.Helper()
	spec := newSpec(t, testenv.BusyboxRootfs(t), "sleep", "1000")
	spec.Env = []string{"GREETING=hello"}
	c, err := Start(spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Cleanup(); err != nil {
			t.Error(err)
		}
	})
	return c
}

func execIn(t *testing.T, c *Container, spec ExecSpec) (string, ExitStatus, error) {
	t.Helper()
	var out bytes.Buffer
	spec.Name, spec.Pid = "test", c.Pid()
	spec.Stdout, spec.Stderr = &out, &out
	p, err := Exec(&spec)
	if err != nil {
		return "", ExitStatus{}, err
	}
	st, err := p.Wait()
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return out.String(), st, nil
}

func TestExecEntersEveryNamespace(t *testing.T) {
	testenv.RequireRoot(t)
	c := startSleeper(t)
	pid := strconv.Itoa(c.Pid())
	out, st, err := execIn(t, c, ExecSpec{Args: []string{"sh", "-c", `
		echo host $(hostname)
		echo init $(tr '\0' ' ' < /proc/1/cmdline)
		echo pid $$
		for ns in pid uts ipc net mnt; do echo ns $ns $(readlink /proc/self/ns/$ns); done`}})
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if st.Code != 0 {
		t.Fatalf("exit %+v:\n%s", st, out)
	}
	if !strings.Contains(out, "host test\n") || !strings.Contains(out, "init sleep 1000\n") {
		t.Errorf("not in the container's uts and pid namespaces:\n%s", out)
	}
	if strings.Contains(out, "pid 1\n") || strings.Contains(out, "pid "+pid+"\n") {
		t.Errorf("the process should be a child in the container's pid namespace:\n%s", out)
	}
	for _, ns := range []string{"pid", "uts", "ipc", "net", "mnt"} {
		if want := "ns " + ns + " " + nsLink(t, pid, ns) + "\n"; !strings.Contains(out, want) {
			t.Errorf("want %q in:\n%s", want, out)
		}
	}
}

func TestExecStatuses(t *testing.T) {
	testenv.RequireRoot(t)
	c := startSleeper(t)
	_, st, err := execIn(t, c, ExecSpec{Args: []string{"sh", "-c", "exit 3"}})
	if err != nil || st.Code != 3 {
		t.Errorf("exit 3: got %+v, %v", st, err)
	}
	_, _, err = execIn(t, c, ExecSpec{Args: []string{"nope"}})
	var ce *CommandError
	if !errors.As(err, &ce) || !ce.NotFound() {
		t.Errorf("missing program: got %v, want a CommandError for a missing file", err)
	}
	_, _, err = execIn(t, c, ExecSpec{Args: []string{"/etc/passwd"}})
	if !errors.As(err, &ce) || !errors.Is(err, syscall.EACCES) {
		t.Errorf("a file that is not executable: got %v, want a CommandError with EACCES", err)
	}
	out, _, err := execIn(t, c, ExecSpec{Args: []string{"sh", "-c", "id -u; id -g; pwd; echo $GREETING"}, User: "nobody", Workdir: "/tmp", Env: []string{"GREETING=hi"}})
	if err != nil || out != "65534\n65534\n/tmp\nhi\n" {
		t.Errorf("user, workdir, env: got %q, %v", out, err)
	}
}

func TestExecIntoEndedContainer(t *testing.T) {
	testenv.RequireRoot(t)
	c := startSleeper(t)
	pid := c.Pid()
	if err := c.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.Wait()
	_, err := Exec(&ExecSpec{Name: "test", Pid: pid, Args: []string{"true"}})
	if !ErrNotRunning(err) {
		t.Errorf("got %v, want not running", err)
	}
}
