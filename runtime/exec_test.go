package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/testenv"
)

// startSleeper starts a container that runs until the test ends.
func startSleeper(t *testing.T) *Container {
	t.Helper()
	spec := newSpec(t, testenv.BusyboxRootfs(t), "sleep", "1000")
	spec.Env = []string{"GREETING=hello"}
	return startContainer(t, spec)
}

// startContainer starts spec's container, cleaned up when the test ends.
func startContainer(t *testing.T, spec *Spec) *Container {
	t.Helper()
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

// A process of the container must not reach the host's binary through the
// entering process's /proc/PID/exe (runc's CVE-2019-5736). The entering
// process is caught inside its execve, once it has the container's
// identity and capabilities, by a fanotify permission mark on the program;
// there, a root process without CAP_SYS_PTRACE, as the container's are,
// must be refused its exe.
func TestExecIsNotDumpableBeforeItsProgram(t *testing.T) {
	testenv.RequireRoot(t)
	c := startSleeper(t)
	seen := exeSeenAtExec(t, fmt.Sprintf("/proc/%d/root/bin/busybox", c.Pid()))
	out, st, err := execIn(t, c, ExecSpec{Args: []string{"/bin/busybox", "true"}})
	if err != nil || st.Code != 0 {
		t.Fatalf("exec: %v, %+v:\n%s", err, st, out)
	}
	got := <-seen
	if !strings.Contains(got, "Permission denied") {
		t.Errorf("readlink of the entering process's exe, without CAP_SYS_PTRACE: %q, want Permission denied", got)
	}
}

// TestInitIsNotDumpableBeforeItsProgram is the same for a container's
// init: held inside its execve, its exe cannot be read by a root process
// without CAP_SYS_PTRACE, as another container sharing the host's pid
// namespace would be.
func TestInitIsNotDumpableBeforeItsProgram(t *testing.T) {
	testenv.RequireRoot(t)
	// A rootfs of its own, read-only: the program the init execs is then
	// this very file, which no other test executes.
	rootfs := testenv.NewBusyboxRootfs(t)
	seen := exeSeenAtExec(t, filepath.Join(rootfs, "bin", "busybox"))
	spec := newSpec(t, rootfs, "/bin/busybox", "true")
	spec.ReadOnly = true
	if out, st := run(t, spec); st.Code != 0 {
		t.Fatalf("container: %+v:\n%s", st, out)
	}
	got := <-seen
	if !strings.Contains(got, "Permission denied") {
		t.Errorf("readlink of the init's exe, without CAP_SYS_PTRACE: %q, want Permission denied", got)
	}
}

// exeSeenAtExec holds the first process that executes prog inside its
// execve (a fanotify permission event), tries to read that process's
// /proc/PID/exe as root without CAP_SYS_PTRACE, lets it go on, and sends
// what the try printed.
func exeSeenAtExec(t *testing.T, prog string) <-chan string {
	t.Helper()
	fan, err := unix.FanotifyInit(unix.FAN_CLASS_CONTENT|unix.FAN_CLOEXEC, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		testenv.SkipOrFail(t, "fanotify: "+err.Error())
	}
	t.Cleanup(func() { unix.Close(fan) })
	if err := unix.FanotifyMark(fan, unix.FAN_MARK_ADD, unix.FAN_OPEN_EXEC_PERM, unix.AT_FDCWD, prog); err != nil {
		testenv.SkipOrFail(t, "fanotify mark "+prog+": "+err.Error())
	}
	seen := make(chan string, 1)
	go func() {
		buf := make([]byte, 4096)
		n, err := unix.Read(fan, buf)
		if err != nil || n < int(unsafe.Sizeof(unix.FanotifyEventMetadata{})) {
			seen <- fmt.Sprintf("read fanotify: %d, %v", n, err)
			return
		}
		ev := (*unix.FanotifyEventMetadata)(unsafe.Pointer(&buf[0]))
		out, _ := exec.Command("setpriv", "--bounding-set", "-sys_ptrace", "readlink", "-v", fmt.Sprintf("/proc/%d/exe", ev.Pid)).CombinedOutput()
		seen <- string(out)
		resp := unix.FanotifyResponse{Fd: ev.Fd, Response: unix.FAN_ALLOW}
		unix.Write(fan, (*[unsafe.Sizeof(resp)]byte)(unsafe.Pointer(&resp))[:])
		unix.Close(int(ev.Fd))
	}()
	return seen
}
