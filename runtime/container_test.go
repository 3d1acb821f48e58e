package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/capability"
	"github.com/stack-containers/stack/internal/testenv"
	"github.com/stack-containers/stack/runtime/containerinit"
)

func children(t *testing.T) []string {
	t.Helper()
	pids, err := childPids()
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

func mountinfo(t *testing.T) string {
	t.Helper()
	s, err := readMountinfo()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func nsLink(t *testing.T, pid, kind string) string {
	t.Helper()
	l, err := os.Readlink("/proc/" + pid + "/ns/" + kind)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestNamespaces(t *testing.T) {
	testenv.RequireRoot(t)
	spec := newSpec(t, testenv.BusyboxRootfs(t), "sh", "-c", `
		echo pid $$
		echo procs $(for p in /proc/[0-9]*; do cat $p/comm; done)
		echo hostname $(hostname)
		for ns in pid uts ipc net mnt; do echo ns $ns $(readlink /proc/self/ns/$ns); done
		echo links $(ls /sys/class/net)
		echo netdev $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ')`)
	spec.Hostname = "web"
	hostName, _ := os.Hostname()
	out, st := run(t, spec)
	if st.Code != 0 {
		t.Fatalf("exit %+v, output:\n%s", st, out)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(line, " ")
		if k == "ns" {
			kind, link, _ := strings.Cut(v, " ")
			k, v = "ns "+kind, link
		}
		fields[k] = strings.TrimSpace(v)
	}
	if fields["pid"] != "1" {
		t.Errorf("the command is pid %q in its namespace, want 1 (it must be exec'd as PID 1)", fields["pid"])
	}
	// PID 1 (sh), and the cat reading the names.
	if !strings.HasPrefix(fields["procs"], "sh") {
		t.Errorf("container processes %q: want sh first", fields["procs"])
	}
	for _, comm := range strings.Fields(fields["procs"]) {
		if comm != "sh" && comm != "cat" {
			t.Errorf("container sees process %q: not only its own processes (%s)", comm, fields["procs"])
		}
	}
	if fields["hostname"] != "web" {
		t.Errorf("hostname = %q, want web", fields["hostname"])
	}
	if h, _ := os.Hostname(); h != hostName {
		t.Errorf("the host's hostname changed from %q to %q", hostName, h)
	}
	for _, kind := range []string{"pid", "uts", "ipc", "net", "mnt"} {
		if got, host := fields["ns "+kind], nsLink(t, "self", kind); got == "" || got == host {
			t.Errorf("%s namespace %q, the host's is %q: want a new one", kind, got, host)
		}
	}
	if fields["links"] != "lo" || fields["netdev"] != "lo" {
		t.Errorf("network devices: /sys/class/net %q, /proc/net/dev %q; want only lo", fields["links"], fields["netdev"])
	}
}

func TestHostMountTableUnchanged(t *testing.T) {
	testenv.RequireRoot(t)
	before := mountinfo(t)
	data := t.TempDir()
	spec := newSpec(t, testenv.BusyboxRootfs(t), "sleep", "1000")
	spec.Mounts = []Mount{{Source: data, Target: "/data"}}
	c, err := Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	during := mountinfo(t)
	inside, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", c.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if during != before {
		t.Errorf("host mount table changed while the container ran:\nbefore:\n%s\nduring:\n%s", before, during)
	}
	if after := mountinfo(t); after != before {
		t.Errorf("host mount table changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	for _, want := range []string{" / / ", " /proc ", " /dev ", " /sys ", " /data "} {
		if !strings.Contains(string(inside), want) {
			t.Errorf("container mount table lacks %q:\n%s", want, inside)
		}
	}
}

// snapshot describes every entry of a tree: type, mode, owner, size,
// mtime, content or link target.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v %d:%d %d %d", fi.Mode(), st.Uid, st.Gid, fi.Size(), fi.ModTime().UnixNano())
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + l
		case fi.Mode().IsRegular() && fi.Size() < 1<<16:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + string(b)
		}
		snap[p] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func TestRootfsDirUnchanged(t *testing.T) {
	testenv.RequireRoot(t)
	rootfs := testenv.NewBusyboxRootfs(t)
	before := snapshot(t, rootfs)
	out, st := run(t, newSpec(t, rootfs, "sh", "-c", `
		set -e
		for d in / /bin /etc /tmp /root /var /usr /usr/bin /sbin ; do echo x > $d/new; mkdir $d/newdir; done
		echo y >> /etc/passwd
		rm /bin/ls /etc/group
		rm -r /var
		chmod 700 /etc /bin/busybox
		chown 1:1 /tmp
		touch /bin/sh
		ln -s /nowhere /bin/ls
		echo done`))
	if st.Code != 0 || !strings.Contains(out, "done") {
		t.Fatalf("the writes in the container failed: exit %+v, output:\n%s", st, out)
	}
	after := snapshot(t, rootfs)
	for p, d := range before {
		if after[p] != d {
			t.Errorf("%s changed: %q, now %q", p, d, after[p])
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s appeared in the rootfs", p)
		}
	}
}

// TestWritableLayer checks where a writable root's changes land: in the
// layer dir itself, the overlay's upper directory, with the work directory
// beside it and nothing else made; and that the container's / keeps the
// usual 0755, which overlayfs takes from the upper directory.
func TestWritableLayer(t *testing.T) {
	testenv.RequireRoot(t)
	spec := newSpec(t, testenv.BusyboxRootfs(t), "sh", "-c", `
		set -e
		echo changed > /etc/new
		stat -c 'root %a' /`)
	c, out, st := runToEnd(t, spec)
	if st.Code != 0 || !strings.Contains(out, "root 755") {
		t.Errorf("exit %+v, output:\n%s", st, out)
	}
	if b, err := os.ReadFile(filepath.Join(spec.LayerDir, "etc", "new")); err != nil || string(b) != "changed\n" {
		t.Errorf("the container's write is not in its layer dir: %q, %v", b, err)
	}
	entries, err := os.ReadDir(filepath.Dir(spec.LayerDir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{filepath.Base(spec.LayerDir), filepath.Base(containerinit.WorkDir(spec.LayerDir))}
	if !slices.Equal(names, want) {
		t.Errorf("beside the layer: %q, want %q", names, want)
	}
	if err := c.Cleanup(); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	for _, dir := range want {
		if _, err := os.Stat(filepath.Join(filepath.Dir(spec.LayerDir), dir)); !os.IsNotExist(err) {
			t.Errorf("%s still there after Cleanup (stat: %v)", dir, err)
		}
	}
}

// TestLayerAcrossRestarts starts a container twice on one layer, as a
// restart does: the second run sees the first one's writes, although the
// first mount, volatile, left its mark in the work dir.
func TestLayerAcrossRestarts(t *testing.T) {
	testenv.RequireRoot(t)
	spec := newSpec(t, testenv.BusyboxRootfs(t), "sh", "-c", `
		set -e
		echo run >> /runs
		wc -l < /runs
		grep -c '^[0-9]* [0-9]* [0-9:]* / / .* - overlay .*volatile' /proc/self/mountinfo`)
	var last *Container
	for run := 1; run <= 2; run++ {
		c, out, st := runToEnd(t, spec)
		last = c
		if want := fmt.Sprintf("%d\n1\n", run); st.Code != 0 || out != want {
			t.Fatalf("run %d: exit %+v, output %q, want %q", run, st, out, want)
		}
		mark := filepath.Join(containerinit.WorkDir(spec.LayerDir), "work", "incompat", "volatile")
		if _, err := os.Stat(mark); err != nil {
			t.Fatalf("run %d: the overlay left no volatile mark: %v", run, err)
		}
	}
	if err := last.Cleanup(); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
}

func TestStartErrors(t *testing.T) {
	testenv.RequireRoot(t)
	rootfs := testenv.BusyboxRootfs(t)
	tests := []struct {
		name   string
		change func(*Spec)
		want   string
		errno  error
	}{
		{"missing command", func(s *Spec) { s.Args = []string{"/bin/nope"} },
			`container "web": exec "/bin/nope": no such file or directory`, fs.ErrNotExist},
		{"command not in PATH", func(s *Spec) { s.Args = []string{"nope"} },
			`container "web": exec "nope": executable file not found in $PATH`, fs.ErrNotExist},
		{"non-executable command", func(s *Spec) { s.Args = []string{"/etc/passwd"} },
			`container "web": exec "/etc/passwd": permission denied`, fs.ErrPermission},
		{"missing workdir", func(s *Spec) { s.Workdir = "/nope" },
			`container "web": workdir "/nope": no such file or directory`, fs.ErrNotExist},
		{"missing bind-mount source", func(s *Spec) { s.Mounts = []Mount{{Source: "/nonexistent/data", Target: "/data"}} },
			`container "web": bind mount /nonexistent/data on /data: source: stat /nonexistent/data: no such file or directory`, fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := newSpec(t, rootfs, "true")
			spec.Name = "web"
			tt.change(spec)
			c, err := Start(spec)
			if err == nil {
				c.Cleanup()
				t.Fatal("Start succeeded")
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", err, tt.want)
			}
			if !errors.Is(err, tt.errno) {
				t.Errorf("error %v is not %v", err, tt.errno)
			}
			if _, err := os.Stat(spec.LayerDir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("layer dir left behind (stat: %v)", err)
			}
			if pids := children(t); len(pids) > 0 {
				t.Errorf("processes left running: %v", pids)
			}
		})
	}
}

func TestMaskedAndReadOnly(t *testing.T) {
	testenv.RequireRoot(t)
	out, st := run(t, newSpec(t, testenv.BusyboxRootfs(t), "sh", "-c", `
		for p in `+strings.Join(containerinit.MaskedProc, " ")+`; do
			f=/proc/$p
			if [ -d $f ]; then echo "masked $p dir $(ls -A $f | wc -l)"
			elif [ -e $f ]; then echo "masked $p file $(cat $f | wc -c)"
			else echo "masked $p absent"; fi
		done
		echo "firmware $(ls -A /sys/firmware | wc -l)"
		for f in /sys/kernel/uevent_helper /sys/newfile /proc/sys/kernel/hostname /proc/sysrq-trigger; do
			if echo x 2>/dev/null > $f; then echo "wrote $f"; else echo "refused $f"; fi
		done`))
	if st.Code != 0 {
		t.Fatalf("exit %+v, output:\n%s", st, out)
	}
	t.Logf("\n%s", out)
	for _, p := range containerinit.MaskedProc {
		_, err := os.Lstat("/proc/" + p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// This kernel has no such entry; nothing to hide.
		case err != nil:
			t.Fatal(err)
		case !strings.Contains(out, "masked "+p+" dir 0\n") && !strings.Contains(out, "masked "+p+" file 0\n"):
			t.Errorf("/proc/%s is not masked in the container", p)
		}
	}
	if !strings.Contains(out, "firmware 0\n") {
		t.Errorf("/sys/firmware is not masked")
	}
	if strings.Contains(out, "wrote") {
		t.Errorf("a write to /sys or /proc/sys succeeded")
	}
}

func TestKcoreMasked(t *testing.T) {
	testenv.RequireRoot(t)
	// Whether or not this kernel has a /proc/kcore, the container must
	// not read a byte of it.
	out, st := run(t, newSpec(t, testenv.BusyboxRootfs(t), "sh", "-c",
		`if [ -e /proc/kcore ]; then echo "kcore $(head -c 4096 /proc/kcore | wc -c)"; else echo "kcore absent"; fi`))
	if st.Code != 0 {
		t.Fatalf("exit %+v, output:\n%s", st, out)
	}
	if out != "kcore 0\n" && out != "kcore absent\n" {
		t.Errorf("/proc/kcore readable in the container: %q", out)
	}
	if _, err := os.Stat("/proc/kcore"); err == nil && out != "kcore 0\n" {
		t.Errorf("the host has /proc/kcore but the container sees %q", out)
	}
}

func TestReadOnlyRootfs(t *testing.T) {
	testenv.RequireRoot(t)
	spec := newSpec(t, testenv.BusyboxRootfs(t), "sh", "-c", `
		for f in /new /etc/new /tmp/new; do if touch $f 2>/dev/null; then echo "wrote $f"; fi; done
		touch /dev/shm/ok && echo shm ok`)
	spec.ReadOnly = true
	out, st := run(t, spec)
	if st.Code != 0 || strings.Contains(out, "wrote") || !strings.Contains(out, "shm ok") {
		t.Errorf("read_only: exit %+v, output:\n%s", st, out)
	}
}

func TestProcessSettings(t *testing.T) {
	testenv.RequireRoot(t)
	spec := newSpec(t, testenv.BusyboxRootfs(t), "sh", "-c", `
		echo env $FOO $PATH
		echo pwd $(pwd)
		echo id $(id -u) $(id -g) $(id -G)
		grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status | tr -d '\t'`)
	spec.Env = []string{"FOO=bar"}
	spec.Workdir = "/tmp"
	spec.UID, spec.GID = 1000, 1001
	out, st := run(t, spec)
	if st.Code != 0 {
		t.Fatalf("exit %+v, output:\n%s", st, out)
	}
	want := []string{
		"env bar " + strings.TrimPrefix(defaultPath, "PATH="),
		"pwd /tmp",
		"id 1000 1001 1001",
		"CapInh:0000000000000000", "CapPrm:0000000000000000", "CapEff:0000000000000000",
		fmt.Sprintf("CapBnd:%016x", dockerCapMask(t)),
		"CapAmb:0000000000000000",
		"NoNewPrivs:1",
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, w := range want {
		if !slices.Contains(lines, w) {
			t.Errorf("missing %q in:\n%s", w, out)
		}
	}
}

func dockerCapMask(t *testing.T) uint64 {
	t.Helper()
	m, err := capability.Mask(capability.Default)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDescriptorsClosed(t *testing.T) {
	testenv.RequireRoot(t)
	// A descriptor without close-on-exec, which a fork inherits: the
	// init must not pass it on to the program, nor its pipe.
	leak, err := syscall.Open("/dev/null", syscall.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(leak)
	c, err := Start(newSpec(t, testenv.BusyboxRootfs(t), "sleep", "1000"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Cleanup()
	checkOnlyStdio(t, c.Pid(), "sleep")
	if err := c.Cleanup(); err != nil {
		t.Fatal(err)
	}
}

// checkOnlyStdio checks that the process pid, once it runs program, has
// only 0, 1 and 2 open. A starter's wait for a vfork child ends when the
// kernel gives the child its new memory, and the kernel closes the
// close-on-exec descriptors a moment later, before it names the task
// after the program: so the check waits for that name first.
func checkOnlyStdio(t *testing.T, pid int, program string) {
	t.Helper()
	comm := fmt.Sprintf("/proc/%d/comm", pid)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		name, err := os.ReadFile(comm)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(string(name)) == program {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d is still %q, not %q", pid, strings.TrimSpace(string(name)), program)
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, fd := range fds {
		names = append(names, fd.Name())
	}
	if !slices.Equal(names, []string{"0", "1", "2"}) {
		t.Errorf("the program has descriptors %v open, want only 0 1 2", names)
	}
}

func TestRootCapabilities(t *testing.T) {
	testenv.RequireRoot(t)
	out, st := run(t, newSpec(t, testenv.BusyboxRootfs(t), "grep", "-E", "^Cap(Prm|Eff|Bnd)", "/proc/self/status"))
	if st.Code != 0 {
		t.Fatalf("exit %+v, output:\n%s", st, out)
	}
	m := fmt.Sprintf("%016x", dockerCapMask(t))
	if want := fmt.Sprintf("CapPrm:\t%s\nCapEff:\t%s\nCapBnd:\t%s\n", m, m, m); out != want {
		t.Errorf("root's capabilities:\n%s\nwant Docker's default set:\n%s", out, want)
	}
}

func TestBindMounts(t *testing.T) {
	testenv.RequireRoot(t)
	rw, ro := t.TempDir(), t.TempDir()
	file := filepath.Join(t.TempDir(), "file")
	for _, f := range []string{filepath.Join(ro, "conf"), file} {
		if err := os.WriteFile(f, []byte("hello\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec := newSpec(t, testenv.BusyboxRootfs(t), "sh", "-c", `
		echo written > /data/out
		cat /etc/app/conf /deep/dir/file
		if touch /etc/app/new 2>/dev/null; then echo "wrote ro"; fi`)
	spec.Mounts = []Mount{
		{Source: rw, Target: "/data"},
		{Source: ro, Target: "/etc/app", ReadOnly: true},
		{Source: file, Target: "/deep/dir/file"},
	}
	out, st := run(t, spec)
	if st.Code != 0 || out != "hello\nhello\n" {
		t.Errorf("exit %+v, output %q; want the two files read and the ro write refused", st, out)
	}
	if b, err := os.ReadFile(filepath.Join(rw, "out")); err != nil || string(b) != "written\n" {
		t.Errorf("write through the rw bind: %q, %v", b, err)
	}
}

func TestJoinNet(t *testing.T) {
	testenv.RequireRoot(t)
	rootfs := testenv.BusyboxRootfs(t)
	first, err := Start(newSpec(t, rootfs, "sleep", "1000"))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Cleanup()
	spec := newSpec(t, rootfs, "sh", "-c", "readlink /proc/self/ns/net; readlink /proc/self/ns/uts; ls /sys/class/net")
	spec.Namespaces = []string{"pid", "mount", "ipc"}
	spec.Join = map[string]int{"net": first.Pid(), "uts": first.Pid()}
	out, st := run(t, spec)
	pid := strconv.Itoa(first.Pid())
	want := nsLink(t, pid, "net") + "\n" + nsLink(t, pid, "uts") + "\nlo\n"
	if st.Code != 0 || out != want {
		t.Errorf("exit %+v, output:\n%s\nwant the first container's namespaces:\n%s", st, out, want)
	}
	if err := first.Cleanup(); err != nil {
		t.Fatal(err)
	}
}

func TestHandle(t *testing.T) {
	testenv.RequireRoot(t)
	spec := newSpec(t, testenv.BusyboxRootfs(t), "sleep", "1000")
	c, err := Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			st, err := c.Wait()
			if err != nil || !st.Signaled || st.Signal != syscall.SIGKILL || st.Code != 137 {
				t.Errorf("Wait = %+v, %v; want killed by SIGKILL", st, err)
			}
		})
	}
	wg.Wait()
	<-c.Done()
	if err := c.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("Signal after exit: %v", err)
	}
	for range 2 {
		if err := c.Cleanup(); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	}
	if _, err := os.Stat(spec.LayerDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("layer dir left behind (stat: %v)", err)
	}
	if err := RemoveLayer(spec.LayerDir); err != nil {
		t.Errorf("RemoveLayer of a removed layer: %v", err)
	}
}

// threadsInWaitid counts this process's threads blocked in waitid, as
// the kernel reports each thread's current system call.
func threadsInWaitid(t *testing.T) int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "syscall"))
		if err != nil {
			continue // the thread ended
		}
		if nr, _, _ := strings.Cut(string(b), " "); nr == strconv.Itoa(unix.SYS_WAITID) {
			n++
		}
	}
	return n
}

// TestRunningContainersHoldNoThread: waiting for a container to end parks
// a goroutine, not a thread blocked in waitid per container.
func TestRunningContainersHoldNoThread(t *testing.T) {
	testenv.RequireRoot(t)
	rootfs := testenv.BusyboxRootfs(t)
	const n = 16
	var cs []*Container
	defer func() {
		for _, c := range cs {
			c.Signal(syscall.SIGKILL)
			c.Wait()
			c.Cleanup()
		}
	}()
	for i := range n {
		spec := newSpec(t, rootfs, "sleep", "1000")
		spec.Name = fmt.Sprintf("test%d", i)
		c, err := Start(spec)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	// A wait in waitid is entered at once; this gives each its time.
	for range 20 {
		if threadsInWaitid(t) >= n {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := threadsInWaitid(t); got >= n {
		t.Errorf("%d threads blocked in waitid while %d containers run, want fewer than one each", got, n)
	}
	for _, c := range cs {
		select {
		case <-c.Done():
			t.Errorf("%s ended early", c.name)
		default:
		}
	}
}

func TestExitCode(t *testing.T) {
	testenv.RequireRoot(t)
	_, st := run(t, newSpec(t, testenv.BusyboxRootfs(t), "sh", "-c", "exit 7"))
	if st != (ExitStatus{Code: 7}) {
		t.Errorf("status %+v, want exit code 7", st)
	}
}

func TestSymlinkedProcAndDev(t *testing.T) {
	testenv.RequireRoot(t)
	rootfs := testenv.NewBusyboxRootfs(t)
	// /proc and /dev of the rootfs point at real host directories.
	host := t.TempDir()
	for _, d := range []string{"proc", "dev"} {
		if err := os.Mkdir(filepath.Join(host, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(rootfs, d)); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(host, d), filepath.Join(rootfs, d)); err != nil {
			t.Fatal(err)
		}
	}
	before := mountinfo(t)
	out, st := run(t, newSpec(t, rootfs, "sh", "-c", `
		echo comm $(cat /proc/1/comm)
		echo null $(wc -c < /dev/null)
		cut -d' ' -f5 /proc/self/mountinfo`))
	if st.Code != 0 {
		t.Fatalf("exit %+v, output:\n%s", st, out)
	}
	// Inside the container the links resolve inside its root, where the
	// mounts are.
	for _, want := range []string{"comm sh\n", "null 0\n", "\n" + host + "/proc\n", "\n" + host + "/dev\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("container output lacks %q:\n%s", want, out)
		}
	}
	if after := mountinfo(t); after != before {
		t.Errorf("host mount table changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	for _, d := range []string{"proc", "dev"} {
		if entries, err := os.ReadDir(filepath.Join(host, d)); err != nil || len(entries) != 0 {
			t.Errorf("host directory %s/%s got %v (%v)", host, d, entries, err)
		}
	}
}

// A program in a new network namespace can use 127.0.0.1 at once: lo is up.
func TestLoopbackUp(t *testing.T) {
	testenv.RequireRoot(t)
	// nc listens on 127.0.0.1 and a second nc connects to it; both fail
	// when lo is down. The client waits (up to 10s) for the listening
	// socket to show in /proc/net/tcp or tcp6 (port 7000 is 1B58, state
	// 0A is LISTEN), not a fixed time that a loaded machine may overrun.
	// The listener's stdin is a fifo the shell holds open: at the EOF of
	// /dev/null it would shut its side down at once, and a client seeing
	// that before reading its own stdin exits without sending the line.
	spec := newSpec(t, testenv.BusyboxRootfs(t), "sh", "-c",
		`cat /sys/class/net/lo/flags; mkfifo /tmp/in; nc -l -p 7000 < /tmp/in > /tmp/got & exec 3> /tmp/in
		i=0; until cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q ':1B58 [0-9A-F]*:0000 0A' || [ $i -ge 200 ]; do sleep 0.05; i=$((i+1)); done
		echo hello | nc -w 1 127.0.0.1 7000 || kill $!; wait; cat /tmp/got`)
	out, st := run(t, spec)
	if st.Code != 0 {
		t.Fatalf("exit %+v, output:\n%s", st, out)
	}
	lines := strings.Fields(out)
	if len(lines) != 2 || lines[1] != "hello" {
		t.Fatalf("output %q: want lo's flags then the line sent over 127.0.0.1", out)
	}
	flags, err := strconv.ParseUint(strings.TrimPrefix(lines[0], "0x"), 16, 32)
	if err != nil || flags&unix.IFF_UP == 0 {
		t.Errorf("lo flags %q: want IFF_UP set", lines[0])
	}
}

func TestImageLayersStacked(t *testing.T) {
	testenv.RequireRoot(t)
	// The top layer adds a file and hides one of the busybox layer's, as
	// the image store leaves a whiteout: a character device 0:0.
	top := t.TempDir()
	if err := os.WriteFile(filepath.Join(top, "hello"), []byte("from the top layer\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(top, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(top, "etc", "group"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	for _, readOnly := range []bool{false, true} {
		spec := newSpec(t, "", "sh", "-c", "cat /hello; test -e /etc/group || echo group gone; test -e /etc/passwd && echo passwd kept")
		spec.Layers = []string{testenv.BusyboxRootfs(t), top}
		spec.ReadOnly = readOnly
		out, st := run(t, spec)
		if want := "from the top layer\ngroup gone\npasswd kept\n"; st.Code != 0 || out != want {
			t.Errorf("read_only %v: exit %+v, output %q, want %q", readOnly, st, out, want)
		}
	}
}

// TestManyLongLayers stacks 40 layers whose paths, as the image store's
// are, make a lowerdir far over the 255 bytes fsconfig takes a value: the
// overlay must still be made, the same way on every kernel (no lowerdir+,
// which Linux 6.8 added), and each layer show through, writable or not.
func TestManyLongLayers(t *testing.T) {
	testenv.RequireRoot(t)
	store := t.TempDir()
	layers := []string{testenv.BusyboxRootfs(t)}
	for i := range 40 {
		dir := filepath.Join(store, fmt.Sprintf("%064x", i), "fs")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("layer%02d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		layers = append(layers, dir)
	}
	for _, readOnly := range []bool{false, true} {
		spec := newSpec(t, "", "sh", "-c", "ls / | grep -c '^layer'; cat /proc/self/mountinfo | grep -c lowerdir=0:1:2")
		spec.Layers = layers
		spec.ReadOnly = readOnly
		out, st := run(t, spec)
		// The mount table inside hides the host's paths; what shows is
		// that the 41 lower directories went in by their short links.
		if want := "40\n1\n"; st.Code != 0 || out != want {
			t.Errorf("read_only %v: exit %+v, output %q, want %q", readOnly, st, out, want)
		}
	}
}

// TestLargeEnvironment starts a container whose environment is near what
// execve takes (values of up to 128 KiB each, some MiB in all), larger
// than a socket's default send buffer: the configuration must still reach
// the init, and the program see every value whole.
func TestLargeEnvironment(t *testing.T) {
	testenv.RequireRoot(t)
	spec := newSpec(t, testenv.BusyboxRootfs(t), "sh", "-c", `echo ${#V0} ${#V9}`)
	for i := range 10 {
		spec.Env = append(spec.Env, fmt.Sprintf("V%d=%s", i, strings.Repeat("x", 100<<10)))
	}
	out, st := run(t, spec)
	if st.Code != 0 || strings.TrimSpace(out) != fmt.Sprintf("%d %d", 100<<10, 100<<10) {
		t.Errorf("exit %+v, output:\n%s", st, out)
	}
}
