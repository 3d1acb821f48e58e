package seccomp

import (
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/testenv"
)

// The test binary doubles as a process that installs a filter and tries
// syscalls under it: with helperEnv set to a profile ("default" or a JSON
// file), it prints one "NAME: RESULT" line per probe.
const helperEnv = "STACK_SECCOMP_TEST_PROFILE"

func TestMain(m *testing.M) {
	if profile := os.Getenv(helperEnv); profile != "" {
		os.Exit(runHelper(profile))
	}
	os.Exit(m.Run())
}

// probes are raw syscalls, so that the result is the kernel's (and the
// filter's), not a library's fallback.
var probes = []struct {
	name string
	try  func(dir string) unix.Errno
}{
	{"getpid", func(string) unix.Errno { return raw(unix.SYS_GETPID, 0, 0) }},
	{"mkdir", func(dir string) unix.Errno {
		p, err := unix.BytePtrFromString(dir + "/d")
		if err != nil {
			return unix.EINVAL
		}
		// A path that is absolute needs no directory descriptor.
		_, _, e := unix.RawSyscall(unix.SYS_MKDIRAT, 0, uintptr(unsafe.Pointer(p)), 0o755)
		return e
	}},
	// A user namespace needs a single-threaded process, so without a
	// filter this one fails with EINVAL; a UTS namespace does not.
	{"unshare user", func(string) unix.Errno { return raw(unix.SYS_UNSHARE, unix.CLONE_NEWUSER, 0) }},
	{"unshare uts", func(string) unix.Errno { return raw(unix.SYS_UNSHARE, unix.CLONE_NEWUTS, 0) }},
	{"clone3", func(string) unix.Errno { return raw(unix.SYS_CLONE3, 0, 0) }},
	// ^uintptr(2) is KEY_SPEC_SESSION_KEYRING, -3.
	{"keyctl", func(string) unix.Errno { return raw(unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, ^uintptr(2)) }},
	{"io_uring_setup", func(string) unix.Errno { return raw(unix.SYS_IO_URING_SETUP, 1, 0) }},
	{"personality query", func(string) unix.Errno { return raw(unix.SYS_PERSONALITY, 0xffffffff, 0) }},
}

func raw(nr, a0, a1 uintptr) unix.Errno {
	_, _, e := unix.RawSyscall(nr, a0, a1, 0)
	return e
}

func runHelper(profile string) int {
	runtime.LockOSThread()
	p := Default()
	if profile != "default" {
		data, err := os.ReadFile(profile)
		if err == nil {
			p, err = Parse(data)
		}
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			return 2
		}
	}
	prog, err := p.Compile(dockerCaps)
	if err == nil {
		err = unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
	}
	if err == nil {
		err = prog.Install()
	}
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 2
	}
	dir := os.Getenv("STACK_SECCOMP_TEST_DIR")
	var out strings.Builder
	for _, pr := range probes {
		result := "ok"
		if e := pr.try(dir); e != 0 {
			result = unix.ErrnoName(e)
		}
		out.WriteString(pr.name + ": " + result + "\n")
	}
	os.Stdout.WriteString(out.String())
	return 0
}

func probe(t *testing.T, profile string) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+profile, "STACK_SECCOMP_TEST_DIR="+t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper with profile %s: %v (%s)", profile, err, err.(*exec.ExitError).Stderr)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func TestInstallDefault(t *testing.T) {
	// Root, so that nothing but the filter refuses unshare and keyctl.
	testenv.RequireRoot(t)
	want := []string{
		"getpid: ok",
		"mkdir: ok",
		"unshare user: EPERM",
		"unshare uts: EPERM",
		"clone3: ENOSYS",
		"keyctl: EPERM",
		"io_uring_setup: EPERM",
		"personality query: ok",
	}
	if got := probe(t, "default"); !slices.Equal(got, want) {
		t.Errorf("under the default profile:\n%q\nwant\n%q", got, want)
	}
}

func TestInstallCustom(t *testing.T) {
	testenv.RequireRoot(t)
	file := t.TempDir() + "/no-mkdir.json"
	profile := `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
		{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}`
	if err := os.WriteFile(file, []byte(profile), 0o644); err != nil {
		t.Fatal(err)
	}
	got := probe(t, file)
	if !slices.Contains(got, "mkdir: EPERM") || !slices.Contains(got, "unshare uts: ok") {
		t.Errorf("under a profile that refuses only mkdir: %q; want mkdir EPERM and unshare uts ok", got)
	}
}
