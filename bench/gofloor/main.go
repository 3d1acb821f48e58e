// Command gofloor is the floor that bench compares stack with: the least a
// container runner written in Go does for each container. It makes a memory
// cgroup, then clones the container with new pid, mount, uts, ipc and net
// namespaces and a chroot into the rootfs (os/exec's SysProcAttr); on
// cgroup v2 the clone places the child in its cgroup (CLONE_INTO_CGROUP),
// on v1 its pid is written to the cgroup right after the start. All N are
// launched at once. With -netns each container also gets a veth pair, one
// end (eth0) in its namespace and the other, brought up, in the namespace
// of that file: never the host's.
//
//	gofloor -rootfs DIR -cgroup DIR [-v2] [-netns FILE] [-veth PREFIX] -n N -- CMD [ARG...]
//
// Once every container has started it prints "ready" on stdout; it then
// stays their parent, as a supervisor does, reaps them, and returns once
// every one has ended (exit 1 if one failed to start or exited non-zero;
// killed is how a teardown ends them, and counts as ended). The
// containers' cgroups are DIR/c0 ... DIR/cN-1, and the caller removes
// them. It is kept small on purpose: each run pays its start, as stack's
// pays stack's.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

const cloneflags = syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC | syscall.CLONE_NEWNET

func main() {
	rootfs := flag.String("rootfs", "", "the containers' root")
	cgroupDir := flag.String("cgroup", "", "the cgroup below which each container gets its own")
	v2 := flag.Bool("v2", false, "the cgroup is cgroup2's: join it at clone")
	nsFile := flag.String("netns", "", "give each container a veth pair, the other end in this network namespace")
	vethPrefix := flag.String("veth", "vf", "prefix of the veth ends' names in -netns")
	n := flag.Int("n", 1, "how many containers")
	flag.Parse()
	argv := flag.Args()
	if *rootfs == "" || *cgroupDir == "" || len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "gofloor: error: -rootfs, -cgroup and a command are needed")
		os.Exit(2)
	}
	var handle *netlink.Handle
	if *nsFile != "" {
		ns, err := netns.GetFromPath(*nsFile)
		if err == nil {
			handle, err = netlink.NewHandleAt(ns)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "gofloor: error: network namespace %s: %v\n", *nsFile, err)
			os.Exit(1)
		}
	}
	cmds := make([]*exec.Cmd, *n)
	errs := make([]error, *n)
	var wg sync.WaitGroup
	for i := range *n {
		wg.Go(func() {
			cmds[i], errs[i] = launch(i, *rootfs, filepath.Join(*cgroupDir, "c"+strconv.Itoa(i)), *v2, handle, *vethPrefix, argv)
		})
	}
	wg.Wait()
	err := errors.Join(errs...)
	if err == nil {
		fmt.Println("ready")
	} else {
		// A failed start ends the others, as a runner's would.
		for _, cmd := range cmds {
			if cmd != nil {
				_ = cmd.Process.Kill()
			}
		}
	}
	for i, cmd := range cmds {
		if cmd == nil {
			continue
		}
		var exit *exec.ExitError
		if werr := cmd.Wait(); werr != nil && !(errors.As(werr, &exit) && exit.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL) {
			err = errors.Join(err, fmt.Errorf("container %d: %w", i, werr))
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gofloor: error: %v\n", err)
		os.Exit(1)
	}
}

func launch(i int, rootfs, cgroup string, v2 bool, handle *netlink.Handle, vethPrefix string, argv []string) (*exec.Cmd, error) {
	if err := os.Mkdir(cgroup, 0o755); err != nil {
		return nil, fmt.Errorf("container %d: make cgroup: %w", i, err)
	}
	cmd := &exec.Cmd{Path: argv[0], Args: argv, Dir: "/", Stderr: os.Stderr}
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: rootfs, Cloneflags: cloneflags}
	if v2 {
		dir, err := os.Open(cgroup)
		if err != nil {
			return nil, fmt.Errorf("container %d: open cgroup: %w", i, err)
		}
		defer dir.Close()
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(dir.Fd())
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("container %d: start: %w", i, err)
	}
	if !v2 {
		if err := os.WriteFile(filepath.Join(cgroup, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
			return cmd, fmt.Errorf("container %d: join cgroup: %w", i, err)
		}
	}
	if handle != nil {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: vethPrefix + strconv.Itoa(i)}, PeerName: "eth0", PeerNamespace: netlink.NsPid(cmd.Process.Pid)}
		if err := handle.LinkAdd(veth); err != nil {
			return cmd, fmt.Errorf("container %d: add veth: %w", i, err)
		}
		if err := handle.LinkSetUp(veth); err != nil {
			return cmd, fmt.Errorf("container %d: set veth up: %w", i, err)
		}
	}
	return cmd, nil
}
