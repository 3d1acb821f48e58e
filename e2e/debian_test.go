package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stack-containers/stack/internal/testenv"
)

// debianCache holds a debootstrap'ed Debian, built once per machine: it
// takes a minute and the network, and every run after that reuses it.
const debianCache = "/var/tmp/stack-test-debian"

// debianRootfs returns a minimal Debian bookworm tree, building it first
// if the cache has none. Without debootstrap or the mirror the test skips
// (fails in CI, whose .ci/run installs debootstrap).
func debianRootfs(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(debianCache, "bookworm")
	if _, err := os.Stat(filepath.Join(dir, "usr/bin/apt-get")); err == nil {
		return dir
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		testenv.SkipOrFail(t, "debootstrap is not installed (apt-get install debootstrap)")
	}
	if err := os.MkdirAll(debianCache, 0o755); err != nil {
		t.Fatal(err)
	}
	// Another test binary may be building it at the same time.
	lock, err := os.OpenFile(filepath.Join(debianCache, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "usr/bin/apt-get")); err == nil {
		return dir
	}
	tmp := dir + ".partial"
	if err := os.RemoveAll(tmp); err != nil {
		t.Fatal(err)
	}
	t.Logf("debootstrap --variant=minbase bookworm into %s (once per machine)", dir)
	out, err := exec.Command("debootstrap", "--variant=minbase", "bookworm", tmp, "http://deb.debian.org/debian").CombinedOutput()
	if err != nil {
		os.RemoveAll(tmp)
		tail := string(out)
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		testenv.SkipOrFail(t, fmt.Sprintf("debootstrap failed (is Debian's mirror reachable?): %v\n%s", err, tail))
	}
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestDebianRootfs runs a real distribution's tools under the default
// seccomp profile, capabilities and device rules.
func TestDebianRootfs(t *testing.T) {
	e := newEnv(t)
	rootfs := debianRootfs(t)
	got := runOne(t, e, rootfs, "", `
		apt-get --version | head -n 1
		bash -c 'echo "bash $BASH_VERSION"'
		ls -d /usr/bin /etc/apt
		unshare -r -m -C true 2>/dev/null; echo "unshare -r -m -C: $?"`)
	var apt, bash bool
	for _, l := range got {
		apt = apt || strings.HasPrefix(l, "apt 2.")
		bash = bash || strings.HasPrefix(l, "bash 5.")
	}
	if !apt || !bash {
		t.Errorf("apt-get --version and bash did not answer:\n%s", strings.Join(got, "\n"))
	}
	wantLines(t, got, "/etc/apt", "/usr/bin", "unshare -r -m -C: 1")
	e.DownLeavingNothing()
}
