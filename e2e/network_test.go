package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stack-containers/stack/internal/stacktest"
)

// fetch runs busybox wget in the Env's network namespace (the test's side
// of the stack's bridge, where "the host" is for its stacks).
// (busybox's wget -T crashes; a kill at the deadline bounds it instead.)
func (e *env) fetch(url string) (string, error) {
	cmd := e.NetnsCommand("busybox", "wget", "-q", "-O", "-", url)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	timer := time.AfterFunc(10*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	return out.String(), err
}

// www writes a page for httpd to serve and returns its directory.
func (e *env) www(text string) string {
	e.t.Helper()
	dir := filepath.Join(e.Dir, "www")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(text), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return dir
}

func TestNetworkNamesAndPublishedPorts(t *testing.T) {
	e := newEnv(t)
	e.www("hello by name\n")
	e.manifest(`
name: net
containers:
  server:
    rootfs: {{rootfs}}
    command: [httpd, -f, -p, "8080", -h, /www]
    mounts: ["./www:/www:ro"]
    ports: ["18080:8080", "127.0.0.1:18081:8080"]
  side:
    rootfs: {{rootfs}}
    command: [sleep, "1000"]
    join: {net: server}
  client:
    rootfs: {{rootfs}}
    read_only: true
    command: [sh, -c, "until wget -qO- http://server:8080/; do sleep 0.2; done; wget -qO- http://side.net:8080/; wget -qO- http://client:1/ 2>&1; sleep 1000"]
`)
	e.MustRun("up", "-d")
	t.Cleanup(func() { e.Run("down") })
	e.WaitFor("the client's three fetches", func() bool {
		return strings.Count(e.MustRun("logs", "client").Stdout, "client | ") >= 3
	})
	logs := e.MustRun("logs", "client").Stdout
	// The second fetch reaches server's httpd through side's name: a
	// joiner resolves to its host's address. The third resolves the
	// client's own name to its own address, where nothing listens.
	if strings.Count(logs, "client | hello by name") != 2 || !strings.Contains(logs, "Connection refused") {
		t.Errorf("client's logs:\n%s", logs)
	}
	ps := e.PS()
	server, side, client := ps["server"], ps["side"], ps["client"]
	if server.IP == "" || side.IP != server.IP || client.IP == "" || client.IP == server.IP {
		t.Errorf("ps addresses: server %q, side %q, client %q", server.IP, side.IP, client.IP)
	}
	if len(server.Ports) != 2 || server.Ports[0].HostIP != "0.0.0.0" || server.Ports[0].HostPort != 18080 ||
		server.Ports[0].ContainerPort != 8080 || server.Ports[0].Protocol != "tcp" || len(client.Ports) != 0 {
		t.Errorf("ps ports: server %+v, client %+v", server.Ports, client.Ports)
	}
	gateway := server.IP[:strings.LastIndexByte(server.IP, '.')] + ".1"
	for _, url := range []string{
		"http://127.0.0.1:18080/", "http://127.0.0.1:18081/", // the listeners on loopback
		"http://" + gateway + ":18080/",  // the host's address on the bridge side
		"http://" + server.IP + ":8080/", // the container itself
	} {
		if out, err := e.fetch(url); err != nil || out != "hello by name\n" {
			t.Errorf("GET %s: %q, %v", url, out, err)
		}
	}
	if out, err := e.fetch("http://" + gateway + ":18081/"); err == nil {
		t.Errorf("a port published on 127.0.0.1 answered on %s: %q", gateway, out)
	}
	e.DownLeavingNothing()
}

func TestNetworkNamesAfterOOMRestart(t *testing.T) {
	e := newEnv(t)
	e.www("still here\n")
	// The server eats memory once its marker is gone, so its first run
	// is OOM-killed and the restarted one serves.
	e.manifest(`
name: oom
containers:
  server:
    rootfs: {{rootfs}}
    command: [sh, -c, "if [ ! -e /tmp/ran ]; then touch /tmp/ran; x=\"$(dd if=/dev/urandom ibs=20000)\"; fi; exec httpd -f -p 8080 -h /www"]
    mounts: ["./www:/www:ro"]
    memory: 2000000
    restart: on-oom
  client:
    rootfs: {{rootfs}}
    command: [sh, -c, "until wget -qO- http://server:8080/; do sleep 0.2; done; sleep 1000"]
`)
	e.MustRun("up", "-d")
	t.Cleanup(func() { e.Run("down") })
	e.WaitFor("the client's fetch after the server's restart", func() bool {
		return strings.Contains(e.MustRun("logs", "client").Stdout, "client | still here")
	})
	// The client can fetch before the state file says the server runs
	// again (its writer batches for up to 50 ms): wait for the state.
	var s stacktest.PSRow
	if !e.Eventually(func() bool {
		s = e.PS()["server"]
		return s.State == "running" && s.Restarts == 1 && s.OOMKills == 1
	}) {
		t.Errorf("server: %+v, want running after one OOM kill and one restart", s)
	}
	e.DownLeavingNothing()
}

// TestNetworkHostsFiles checks each container's /etc/hosts: every
// container's names, and its hostname on each line of its own address.
// Containers whose file would be the same share one, read-only; one whose
// hostname is not on every line of its address (a hostname of its own, an
// address shared with a joiner) gets a file of its own.
func TestNetworkHostsFiles(t *testing.T) {
	e := newEnv(t)
	e.manifest(`
name: hosts
containers:
  one:
    rootfs: {{rootfs}}
    command: [sleep, "1000"]
  two:
    rootfs: {{rootfs}}
    command: [sleep, "1000"]
  named:
    rootfs: {{rootfs}}
    hostname: custom
    command: [sleep, "1000"]
  joined:
    rootfs: {{rootfs}}
    command: [sleep, "1000"]
  side:
    rootfs: {{rootfs}}
    command: [sleep, "1000"]
    join: {net: joined}
`)
	e.MustRun("up", "-d")
	t.Cleanup(func() { e.Run("down") })
	ps := e.PS()
	hosts := map[string]string{}
	for _, c := range []string{"one", "two", "named", "joined", "side"} {
		hosts[c] = e.MustRun("exec", c, "cat", "/etc/hosts").Stdout
	}
	joined := ps["joined"].IP
	shared := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		joined + "\tjoined joined.hosts\n" + ps["named"].IP + "\tnamed named.hosts\n" +
		ps["one"].IP + "\tone one.hosts\n" + joined + "\tside side.hosts\n" + ps["two"].IP + "\ttwo two.hosts\n"
	want := map[string]string{
		"one":    shared,
		"two":    shared,
		"named":  strings.Replace(shared, "named named.hosts", "named named.hosts custom", 1),
		"joined": strings.Replace(shared, "side side.hosts", "side side.hosts joined", 1),
		"side":   strings.Replace(shared, "joined joined.hosts", "joined joined.hosts side", 1),
	}
	for c, w := range want {
		if hosts[c] != w {
			t.Errorf("/etc/hosts of %s:\n%s\nwant:\n%s", c, hosts[c], w)
		}
	}
	entries, err := os.ReadDir(filepath.Join(e.StateDir, "hosts", "net"))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, ent := range entries {
		files = append(files, ent.Name())
	}
	if want := []string{"hosts", "joined.hosts", "named.hosts", "resolv.conf", "side.hosts"}; !slices.Equal(files, want) {
		t.Errorf("name files %q, want %q", files, want)
	}
	if out := e.Run("exec", "one", "sh", "-c", "echo x >> /etc/hosts"); out.Code == 0 {
		t.Errorf("a container wrote to the /etc/hosts it shares: %+v", out)
	}
	// IPv4 alone on eth0, as Docker has it on a network without IPv6;
	// the loopback keeps ::1.
	if v := e.MustRun("exec", "one", "cat", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6").Stdout; v != "1\n" {
		t.Errorf("eth0's disable_ipv6 is %q, want 1", v)
	}
	inet6 := e.MustRun("exec", "one", "cat", "/proc/net/if_inet6").Stdout
	if !regexp.MustCompile(`(?m)^0{31}1 .* lo$`).MatchString(inet6) || strings.Contains(inet6, "eth0") {
		t.Errorf("IPv6 addresses (/proc/net/if_inet6), want ::1 on lo and none on eth0:\n%s", inet6)
	}
	e.DownLeavingNothing()
}

func TestNetworkTakenPortFailsUp(t *testing.T) {
	e := newEnv(t)
	holder := e.NetnsCommand("busybox", "nc", "-l", "-p", "18090")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	e.manifest(`
name: taken
containers:
  web:
    rootfs: {{rootfs}}
    command: [sleep, "1000"]
    ports: ["18090:80"]
  other:
    rootfs: {{rootfs}}
    command: [sleep, "1000"]
`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := e.Run("up", "-d")
		if r.Code == 1 && strings.Contains(r.Stderr, "address already in use") {
			if !strings.Contains(r.Stderr, `container "web"`) || !strings.Contains(r.Stderr, "0.0.0.0:18090/tcp") {
				t.Errorf("up said: %s", r.Stderr)
			}
			break
		}
		// nc may not be listening yet.
		e.Run("down")
		if time.Now().After(deadline) {
			t.Fatalf("up: exit %d\n%s", r.Code, r.Stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if rows := e.PS(); len(rows) != 0 {
		t.Errorf("ps after the failed up: %v", rows)
	}
	e.AssertNothingLeft()
}

func TestNetworkStacksAreIsolated(t *testing.T) {
	e := newEnv(t)
	e.www("served\n")
	dirA, dirB := filepath.Join(e.Dir, "a"), filepath.Join(e.Dir, "b")
	up := func(dir, text string) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		text = strings.ReplaceAll(text, "{{rootfs}}", e.rootfs)
		if err := os.WriteFile(filepath.Join(dir, "stack.yaml"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.RunIn(dir, "down") })
		if r := e.RunIn(dir, "up", "-d"); r.Code != 0 {
			t.Fatalf("up in %s: exit %d: %s", dir, r.Code, r.Stderr)
		}
	}
	up(dirB, `
name: b
containers:
  web:
    rootfs: {{rootfs}}
    command: [httpd, -f, -p, "8080", -h, /www]
    mounts: ["../www:/www:ro"]
`)
	b := e.PS("-p", "b")["web"]
	// httpd may not listen yet when up -d returns.
	e.WaitFor("the host to reach b's web at "+b.IP, func() bool {
		out, err := e.fetch("http://" + b.IP + ":8080/")
		return err == nil && out == "served\n"
	})
	// The probe fetches from its own stack first, the same way, so that
	// a fetch that cannot work at all does not pass for isolation. The
	// daemonized httpd may not listen yet at the first tries: their
	// "Connection refused" would be the logs' first line.
	up(dirA, `
name: a
containers:
  probe:
    rootfs: {{rootfs}}
    command: [sh, -c, "httpd -p 8080 -h /www; until wget -qO- http://probe.a:8080/ 2>/dev/null; do sleep 0.2; done; timeout 3 wget -qO- http://`+b.IP+`:8080/ || echo blocked; sleep 1000"]
    mounts: ["../www:/www:ro"]
`)
	a := e.PS("-p", "a")["probe"]
	if a.IP == "" || a.IP[:strings.LastIndexByte(a.IP, '.')] == b.IP[:strings.LastIndexByte(b.IP, '.')] {
		t.Fatalf("the two stacks' addresses: %q and %q, want two subnets", a.IP, b.IP)
	}
	output := func() string {
		var lines []string
		for _, l := range e.RunIn(dirA, "logs", "probe").Lines() {
			if strings.HasPrefix(l, "probe | ") {
				lines = append(lines, l)
			}
		}
		return strings.Join(lines, "\n")
	}
	e.WaitFor("the probe's second fetch to end", func() bool { return strings.Contains(output(), "probe | blocked") })
	if logs := output(); strings.Count(logs, "probe | served") != 1 || !strings.HasPrefix(logs, "probe | served\n") {
		t.Errorf("the probe's logs:\n%s", logs)
	}
	e.RunIn(dirA, "down")
	e.RunIn(dirB, "down")
	e.AssertNothingLeft()
}

func TestNetworkDownAfterSupervisorKilled(t *testing.T) {
	e := newEnv(t)
	e.manifest(`
name: killed
containers:
  web:
    rootfs: {{rootfs}}
    command: [sleep, "1000"]
    ports: ["18095:80", "18096:53/udp"]
  peer:
    rootfs: {{rootfs}}
    command: [sleep, "1000"]
`)
	e.MustRun("up", "-d")
	if err := syscall.Kill(e.supervisorPid("killed"), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e.DownLeavingNothing()
	// And the next up after a killed supervisor starts clean.
	e.MustRun("up", "-d")
	if err := syscall.Kill(e.supervisorPid("killed"), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e.MustRun("up", "-d")
	e.DownLeavingNothing()
}

// The UDP test needs a UDP echo server in a container and a client on the
// host's side, which busybox's nc cannot be: the test binary (static, as
// CGO_ENABLED=0 builds it) plays both, chosen by its environment.
const (
	udpEchoEnv = "STACK_E2E_UDP_ECHO" // serve on this address
	udpSendEnv = "STACK_E2E_UDP_SEND" // send to this address, print the answer
)

// udpHelper plays its part and returns true when the environment asks.
func udpHelper() bool {
	if addr := os.Getenv(udpEchoEnv); addr != "" {
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("listening")
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				os.Exit(1)
			}
			c.WriteTo(append([]byte("echo "), buf[:n]...), from)
		}
	}
	if addr := os.Getenv(udpSendEnv); addr != "" {
		c, err := net.Dial("udp4", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		buf := make([]byte, 1500)
		// A datagram may go before the listener is there: retry a few.
		for range 20 {
			c.Write([]byte("ping"))
			c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			if n, err := c.Read(buf); err == nil {
				fmt.Printf("%s\n", buf[:n])
				os.Exit(0)
			}
		}
		fmt.Fprintln(os.Stderr, "no answer")
		os.Exit(1)
	}
	return false
}

func TestNetworkPublishedUDP(t *testing.T) {
	e := newEnv(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	e.manifest(`
name: udp
containers:
  echo:
    rootfs: {{rootfs}}
    command: [/udpecho]
    env: {` + udpEchoEnv + `: ":5353"}
    mounts: ["` + self + `:/udpecho:ro"]
    ports: ["127.0.0.1:15353:5353/udp", "15354:5353/udp"]
`)
	e.MustRun("up", "-d")
	t.Cleanup(func() { e.Run("down") })
	e.WaitFor("the echo server to listen", func() bool {
		return strings.Contains(e.MustRun("logs", "echo").Stdout, "echo | listening")
	})
	ip := e.PS()["echo"].IP
	gateway := ip[:strings.LastIndexByte(ip, '.')] + ".1"
	for _, addr := range []string{"127.0.0.1:15353", "127.0.0.1:15354", gateway + ":15354", ip + ":5353"} {
		cmd := e.NetnsCommand(self)
		cmd.Env = append(os.Environ(), udpSendEnv+"="+addr)
		out, err := cmd.CombinedOutput()
		if err != nil || string(out) != "echo ping\n" {
			t.Errorf("udp %s: %q, %v", addr, out, err)
		}
	}
	e.DownLeavingNothing()
}

func TestNetworkSubnetTakenAndNetworkNone(t *testing.T) {
	e := newEnv(t)
	dirA, dirB := filepath.Join(e.Dir, "a"), filepath.Join(e.Dir, "b")
	for dir, text := range map[string]string{
		dirA: "name: a\nnetwork: {subnet: 10.89.5.0/24}\ncontainers:\n" +
			"  web:\n    rootfs: {{rootfs}}\n    command: [sleep, \"1000\"]\n" +
			"  solo:\n    rootfs: {{rootfs}}\n    network: none\n    command: [sh, -c, \"ls /sys/class/net; sleep 1000\"]\n",
		dirB: "name: b\nnetwork: {subnet: 10.89.5.128/25}\ncontainers:\n  web:\n    rootfs: {{rootfs}}\n    command: [sleep, \"1000\"]\n",
	} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "stack.yaml"), []byte(strings.ReplaceAll(text, "{{rootfs}}", e.rootfs)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { e.RunIn(dirA, "down") })
	if r := e.RunIn(dirA, "up", "-d"); r.Code != 0 {
		t.Fatalf("up a: exit %d: %s", r.Code, r.Stderr)
	}
	ps := e.PS("-p", "a")
	if ps["web"].IP != "10.89.5.2" || ps["solo"].IP != "" {
		t.Errorf("addresses: web %q, solo %q; want 10.89.5.2 and none", ps["web"].IP, ps["solo"].IP)
	}
	e.WaitFor("solo's list of interfaces", func() bool {
		return strings.Contains(e.RunIn(dirA, "logs", "solo").Stdout, "solo | lo")
	})
	if logs := e.RunIn(dirA, "logs", "solo").Stdout; strings.Count(logs, "solo | ") != 1 {
		t.Errorf("network: none has more than lo:\n%s", logs)
	}
	r := e.RunIn(dirB, "up", "-d")
	if r.Code != 1 || !strings.Contains(r.Stderr, `stack "b"`) || !strings.Contains(r.Stderr, "subnet 10.89.5.128/25: overlaps") {
		t.Errorf("up of b on a's subnet: exit %d: %s", r.Code, r.Stderr)
	}
	if rows := e.PS("-p", "b"); len(rows) != 0 {
		t.Errorf("ps -p b after the refused up: %v", rows)
	}
	e.RunIn(dirA, "down")
	e.AssertNothingLeft()
}
