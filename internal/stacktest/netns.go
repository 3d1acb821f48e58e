package stacktest

import (
	"fmt"
	"os/exec"
	"strings"
	"syscall"

	"github.com/google/nftables"
)

// Every Env has a network namespace of its own, held by a sleeping process
// made with CLONE_NEWNET, and every stack command of the Env runs in it
// through nsenter(1): the bridges, veths, rules and published ports of its
// stacks never appear in the host's namespace, nor in another Env's, and
// whatever is left is found there.

// netns is an Env's network namespace.
type netns struct {
	holder *exec.Cmd
}

// path is the namespace's file, for nsenter --net=PATH.
func (n *netns) path() string { return fmt.Sprintf("/proc/%d/ns/net", n.holder.Process.Pid) }

// newNetns makes the namespace with lo up, as on a host.
func newNetns() (*netns, error) {
	holder := exec.Command("sleep", "infinity")
	holder.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := holder.Start(); err != nil {
		return nil, fmt.Errorf("network namespace: start its holder: %w", err)
	}
	n := &netns{holder: holder}
	if out, err := n.command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		n.close()
		return nil, fmt.Errorf("network namespace: bring lo up: %v: %s", err, out)
	}
	return n, nil
}

// command runs name in the namespace.
func (n *netns) command(name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=" + n.path(), "--", name}, args...)...)
}

// wrap makes cmd run in the namespace: nsenter enters it and execs the
// program in its own process, so cmd.Process is still the program's.
func (n *netns) wrap(cmd *exec.Cmd) {
	cmd.Args = append([]string{"nsenter", "--net=" + n.path(), "--", cmd.Path}, cmd.Args[1:]...)
	cmd.Path = nsenterPath
}

var nsenterPath = func() string {
	p, err := exec.LookPath("nsenter")
	if err != nil {
		return "nsenter"
	}
	return p
}()

func (n *netns) close() {
	n.holder.Process.Kill()
	n.holder.Wait()
}

// leftovers lists every device but lo and every nftables table of the
// namespace.
func (n *netns) leftovers() []string {
	var left []string
	out, err := n.command("ip", "-o", "link", "show").Output()
	if err != nil {
		return []string{"network namespace: list links: " + err.Error()}
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// "1: lo: <LOOPBACK,UP> ..." or "5: stk1234abcdv2@if4: ..."
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if name != "lo" {
			left = append(left, "network device "+name)
		}
	}
	fd, err := syscall.Open(n.path(), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return append(left, "network namespace: "+err.Error())
	}
	defer syscall.Close(fd)
	c, err := nftables.New(nftables.WithNetNSFd(fd))
	if err != nil {
		return append(left, "nftables: "+err.Error())
	}
	tables, err := c.ListTables()
	if err != nil {
		return append(left, "nftables: list tables: "+err.Error())
	}
	for _, t := range tables {
		left = append(left, "nftables table "+t.Name)
	}
	return left
}

// NetnsPID is the pid of the process that holds the Env's network
// namespace: /proc/PID/ns/net is where its stacks' networks are.
func (e *Env) NetnsPID() int { return e.net.holder.Process.Pid }

// InNetns makes cmd, a program of the test's own that runs stack (a
// script), run in the Env's network namespace.
func (e *Env) InNetns(cmd *exec.Cmd) { e.net.wrap(cmd) }

// NetnsCommand runs a tool in the Env's network namespace, to observe it
// or to reach its published ports from the host's side.
func (e *Env) NetnsCommand(name string, args ...string) *exec.Cmd {
	return e.net.command(name, args...)
}
