package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// goFloorName is the row every ratio is taken against: the least a runner
// written in Go must do for a container.
const goFloorName = "floor (Go clone+chroot)"

// vethFloorName is the floor with a network: the row the stack network's
// ratios are taken against.
const vethFloorName = "floor (Go, veth each)"

// goFloor runs the floor program (bench/gofloor, built at the start of the
// run): the least a runner written in Go does for each container, all
// launched at once by one process that stays their parent. With net set,
// each container also gets a veth pair, the other end in net.
type goFloor struct {
	bin    string
	rootfs string
	cg     floorCgroups
	net    *benchNetns
	// errs takes the program's stderr: a file is passed to the child as
	// is, where a buffer would cost a pipe and a goroutine.
	errs *os.File
	cmds map[string]*exec.Cmd
}

// floorCgroups is where the Go floor makes its cgroups: the run's
// directory in the memory hierarchy, v1 or v2.
type floorCgroups struct {
	dir string
	v2  bool
}

// buildGoFloor builds the floor program into dir.
func buildGoFloor(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "gofloor")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "github.com/stack-containers/stack/bench/gofloor")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the Go floor: %w: %s", err, out)
	}
	return bin, nil
}

func newGoFloor(bin, rootfs string, cg floorCgroups, net *benchNetns, errs *os.File) *goFloor {
	return &goFloor{bin: bin, rootfs: rootfs, cg: cg, net: net, errs: errs, cmds: map[string]*exec.Cmd{}}
}

func (f *goFloor) name() string {
	if f.net != nil {
		return vethFloorName
	}
	return goFloorName
}

// cgroup is the batch's cgroup; container i's is c<i> below it.
func (f *goFloor) cgroup(b *batch) string {
	return filepath.Join(f.cg.dir, "gofloor-"+b.id)
}

// launch starts the program and returns once it says every container has
// started.
func (f *goFloor) launch(b *batch) error {
	if err := os.Mkdir(f.cgroup(b), 0o755); err != nil {
		return fmt.Errorf("%s: make cgroup: %w", f.name(), err)
	}
	args := []string{"-rootfs", f.rootfs, "-cgroup", f.cgroup(b), "-n", strconv.Itoa(b.n)}
	if f.cg.v2 {
		args = append(args, "-v2")
	}
	if f.net != nil {
		// The kernel allows 15 bytes for a device's name.
		args = append(args, "-netns", f.net.path(), "-veth", "vf"+b.id+"-")
	}
	cmd := exec.Command(f.bin, append(append(args, "--"), b.argv...)...)
	cmd.Stderr = f.errs
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("%s: %w", f.name(), err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", f.name(), err)
	}
	f.cmds[b.id] = cmd
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		return fmt.Errorf("%s: did not start its containers: %w: %s", f.name(), f.wait(b), tail(f.errs.Name(), 3))
	}
	return nil
}

// wait waits for the program to end: every container has ended.
func (f *goFloor) wait(b *batch) error {
	cmd, ok := f.cmds[b.id]
	if !ok {
		return nil
	}
	delete(f.cmds, b.id)
	return cmd.Wait()
}

func (f *goFloor) start(_ context.Context, b *batch) error { return f.launch(b) }

// run is not measured for the veth floor: the veth of a container that
// has already ended cannot be made, and a runner would hold the container
// back until its network is there, which the floor does not.
func (f *goFloor) run(ctx context.Context, b *batch) error {
	if f.net != nil {
		return errNotMeasured
	}
	err := f.launch(b)
	if werr := f.wait(b); werr != nil && err == nil {
		err = fmt.Errorf("%s: %w: %s", f.name(), werr, tail(f.errs.Name(), 3))
	}
	return errors.Join(err, f.removeCgroups(b))
}

// errNotMeasured is a cell that a system cannot measure, and says why.
var errNotMeasured = errors.New("not measured: a container's veth cannot be made once it has ended, and the floor does not hold it back")

// down SIGKILLs what is in each container's cgroup, waits for the program
// to have reaped them all, and removes the cgroups. The veth pairs go with
// the containers' namespaces.
func (f *goFloor) down(_ context.Context, b *batch) error {
	var errs error
	for i := range b.n {
		if err := killCgroup(f.containerCgroup(b, i)); err != nil {
			errs = errors.Join(errs, fmt.Errorf("%s: %w", f.name(), err))
		}
	}
	if err := f.wait(b); err != nil {
		errs = errors.Join(errs, fmt.Errorf("%s: %w: %s", f.name(), err, tail(f.errs.Name(), 3)))
	}
	return errors.Join(errs, f.removeCgroups(b))
}

func (f *goFloor) containerCgroup(b *batch, i int) string {
	return filepath.Join(f.cgroup(b), "c"+strconv.Itoa(i))
}

// removeCgroups removes the batch's cgroups; their processes have been
// reaped, so each is empty.
func (f *goFloor) removeCgroups(b *batch) error {
	var errs error
	for i := range b.n {
		if err := os.Remove(f.containerCgroup(b, i)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = errors.Join(errs, fmt.Errorf("%s: remove cgroup: %w", f.name(), err))
		}
	}
	if err := os.Remove(f.cgroup(b)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = errors.Join(errs, fmt.Errorf("%s: remove cgroup: %w", f.name(), err))
	}
	return errs
}

// benchNetns is a network namespace of the run's own, held by a sleeping
// process: the stack network's bridge, veths and rules, and the veth
// floor's host ends, are made there and never in the host's namespace.
type benchNetns struct {
	holder *exec.Cmd
	// fd is the namespace, open.
	fd     int
	handle *netlink.Handle
}

func newBenchNetns() (*benchNetns, error) {
	holder := exec.Command("/bin/sleep", "infinity")
	holder.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := holder.Start(); err != nil {
		return nil, fmt.Errorf("make the run's network namespace: %w", err)
	}
	n := &benchNetns{holder: holder, fd: -1}
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", holder.Process.Pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		n.close()
		return nil, fmt.Errorf("open the run's network namespace: %w", err)
	}
	n.fd = fd
	if n.handle, err = netlink.NewHandleAt(netns.NsHandle(fd)); err != nil {
		n.close()
		return nil, fmt.Errorf("netlink in the run's network namespace: %w", err)
	}
	lo, err := n.handle.LinkByName("lo")
	if err == nil {
		err = n.handle.LinkSetUp(lo)
	}
	if err != nil {
		n.close()
		return nil, fmt.Errorf("loopback of the run's network namespace: %w", err)
	}
	return n, nil
}

// path is the namespace's file, for a process to enter.
func (n *benchNetns) path() string { return fmt.Sprintf("/proc/%d/ns/net", n.holder.Process.Pid) }

// start starts cmd in the namespace: a clone's child shares the namespaces
// of the thread that made it, so the goroutine holds its thread, moves it
// there for the start and back. Unlike nsenter this costs no exec, so that
// stack's rows in the namespace pay nothing the others do not.
func (n *benchNetns) start(cmd *exec.Cmd) error {
	runtime.LockOSThread()
	home, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open the thread's network namespace: %w", err)
	}
	defer unix.Close(home)
	if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter the run's network namespace: %w", err)
	}
	startErr := cmd.Start()
	if err := unix.Setns(home, unix.CLONE_NEWNET); err != nil {
		// The thread stays locked, and ends with the goroutine, rather
		// than run anything else in the wrong namespace.
		return errors.Join(startErr, fmt.Errorf("leave the run's network namespace: %w", err))
	}
	runtime.UnlockOSThread()
	return startErr
}

// links lists the devices of the namespace other than its loopback: at the
// end of a run, what a system left behind. The kernel removes the veth
// ends of a dead namespace in a work queue of its own, so a floor's may
// linger a moment; what is still there after linkGrace is a leak.
func (n *benchNetns) links() ([]string, error) {
	deadline := time.Now().Add(linkGrace)
	for {
		links, err := n.handle.LinkList()
		if err != nil {
			return nil, fmt.Errorf("list the devices of the run's network namespace: %w", err)
		}
		var names []string
		for _, l := range links {
			if l.Attrs().Name != "lo" {
				names = append(names, l.Attrs().Name)
			}
		}
		if len(names) == 0 || time.Now().After(deadline) {
			return names, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const linkGrace = 10 * time.Second

func (n *benchNetns) close() {
	if n.handle != nil {
		n.handle.Close()
	}
	if n.fd >= 0 {
		unix.Close(n.fd)
	}
	_ = n.holder.Process.Kill()
	_ = n.holder.Wait()
}
