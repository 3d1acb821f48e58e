package network

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"
)

// Host is one name of the stack and the address it resolves to.
type Host struct {
	Address netip.Addr
	Names   []string
}

// HostsFile is the /etc/hosts of one container: localhost, the stack's
// hosts, and the container's own hostname at its own address (own, when
// valid) or else at 127.0.0.1. The same inputs give the same bytes, so a
// restarted container sees exactly what it saw before.
func HostsFile(hosts []Host, hostname string, own netip.Addr) []byte {
	var b bytes.Buffer
	local := "localhost"
	if hostname != "" && !own.IsValid() {
		local += " " + hostname
	}
	fmt.Fprintf(&b, "127.0.0.1\t%s\n", local)
	fmt.Fprintf(&b, "::1\tlocalhost ip6-localhost ip6-loopback\n")
	for _, h := range hosts {
		names := h.Names
		if h.Address == own && hostname != "" && !containsName(names, hostname) {
			names = append(names[:len(names):len(names)], hostname)
		}
		fmt.Fprintf(&b, "%s\t%s\n", h.Address, strings.Join(names, " "))
	}
	return b.Bytes()
}

func containsName(names []string, n string) bool {
	for _, x := range names {
		if x == n {
			return true
		}
	}
	return false
}

// hostResolvConfs are read in order; the second is systemd-resolved's list
// of the real upstream servers, for hosts whose /etc/resolv.conf names only
// its loopback stub.
var hostResolvConfs = []string{"/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"}

// ResolvConf is the /etc/resolv.conf of a container: the host's, without
// the nameservers on loopback, which a container's own loopback does not
// serve.
func ResolvConf() ([]byte, error) {
	var out []byte
	for _, p := range hostResolvConfs {
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		var servers int
		out, servers = filterResolvConf(data)
		if servers > 0 {
			break
		}
	}
	return out, nil
}

// filterResolvConf drops loopback nameservers and comments; it returns
// the result and how many nameservers are left.
func filterResolvConf(data []byte) ([]byte, int) {
	var b bytes.Buffer
	servers := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		f := strings.Fields(line)
		if f[0] == "nameserver" {
			if len(f) < 2 {
				continue
			}
			a, err := netip.ParseAddr(strings.Split(f[1], "%")[0])
			if err != nil || a.IsLoopback() {
				continue
			}
			servers++
		}
		b.WriteString(strings.Join(f, " "))
		b.WriteByte('\n')
	}
	return b.Bytes(), servers
}
