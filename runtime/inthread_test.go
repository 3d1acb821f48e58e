package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/testenv"
)

// TestBuiltInThreadRunsNoInitProgram starts a container whose init program
// cannot run: it starts all the same, since the supervisor's thread builds
// it. A container with a user namespace needs the init program, and its
// start fails on it, which shows the broken program would have been noticed.
func TestBuiltInThreadRunsNoInitProgram(t *testing.T) {
	testenv.RequireRoot(t)
	rootfs := testenv.BusyboxRootfs(t)
	broken := NewInitProgram("not a program")
	spec := newSpec(t, rootfs, "sh", "-c", "echo ran as $$")
	spec.Init = broken
	if out, st := run(t, spec); st.Code != 0 || out != "ran as 1\n" {
		t.Errorf("exit %+v, output %q, want \"ran as 1\\n\"", st, out)
	}
	spec = newSpec(t, rootfs, "true")
	spec.Init = broken
	spec.Namespaces = append(spec.Namespaces, "user")
	c, err := Start(spec)
	if err == nil {
		c.Cleanup()
		t.Fatal("a container with a user namespace started with an init program that cannot run")
	}
	if !errors.Is(err, syscall.ENOEXEC) {
		t.Fatalf("a container with a user namespace failed for another reason than its init program: %v", err)
	}
}

// TestBuildsLeaveTheProcessAlone starts containers, more at once than there
// are builder threads, and checks that the test process itself is where it
// was: /proc/self (its main thread's) shows the same namespaces and root,
// and its working directory and umask are unchanged. Then it starts more,
// one after the other, and checks that running containers hold no thread
// each (the builders that cloned them stay, whatever their number).
func TestBuildsLeaveTheProcessAlone(t *testing.T) {
	testenv.RequireRoot(t)
	rootfs := testenv.BusyboxRootfs(t)
	links := func() string {
		var b strings.Builder
		for _, k := range []string{"mnt", "net", "uts", "ipc", "pid", "pid_for_children", "cgroup"} {
			l, err := os.Readlink("/proc/self/ns/" + k)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s=%s ", k, l)
		}
		root, err := os.Readlink("/proc/self/root")
		if err != nil {
			t.Fatal(err)
		}
		cwd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		umask := syscall.Umask(0o022)
		syscall.Umask(umask)
		fmt.Fprintf(&b, "root=%s cwd=%s umask=%o", root, cwd, umask)
		return b.String()
	}
	var cs []*Container
	defer func() {
		for _, c := range cs {
			c.Cleanup()
		}
	}()
	start := func(name string) (*Container, error) {
		spec := newSpec(t, rootfs, "sleep", "1000")
		spec.Name = name
		return Start(spec)
	}
	before := links()
	n := builders.max + 4
	started := make([]*Container, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { started[i], errs[i] = start(fmt.Sprintf("test%d", i)) })
	}
	wg.Wait()
	for i, c := range started {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		cs = append(cs, c)
	}
	if after := links(); after != before {
		t.Errorf("the test process changed:\nbefore %s\nafter  %s", before, after)
	}
	// The containers' PID 1s ran in this process's memory until execve.
	if d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0); err != nil || d != 0 {
		t.Errorf("the process that builds containers is dumpable (%d, %v): a container could ptrace its PID 1 before execve", d, err)
	}
	threads := threadCount(t)
	const more = 16
	for i := range more {
		c, err := start(fmt.Sprintf("more%d", i))
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	if grew := threadCount(t) - threads; grew >= more/2 {
		t.Errorf("%d threads more with %d more containers running, want fewer than one each", grew, more)
	}
}

func threadCount(t *testing.T) int {
	t.Helper()
	tasks, err := filepath.Glob("/proc/self/task/*")
	if err != nil {
		t.Fatal(err)
	}
	return len(tasks)
}
