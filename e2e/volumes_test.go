package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stack-containers/stack/internal/testenv"
)

// volumeDir is where the Env's stack keeps a named volume.
func (e *env) volumeDir(stack, volume string) string {
	return filepath.Join(e.DataDir, "volumes", stack, volume)
}

func exists(t *testing.T, p string) bool {
	t.Helper()
	_, err := os.Lstat(p)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return err == nil
}

func TestE2ENamedVolumeOutlivesDown(t *testing.T) {
	e := newEnv(t)
	// A rootfs of its own, with content at the volume's mount path: the
	// first up copies it into the empty volume, owners and modes too.
	rootfs := testenv.NewBusyboxRootfs(t)
	seed := filepath.Join(rootfs, "var/lib/app")
	if err := os.MkdirAll(filepath.Join(seed, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(seed, "conf.d/seeded"), []byte("from the rootfs\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("conf.d/seeded", filepath.Join(seed, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(seed, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(seed, 0o750); err != nil {
		t.Fatal(err)
	}
	e.rootfs = rootfs
	e.manifest(`
name: keep
volumes:
  appdata: {}
containers:
  app:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "cat /var/lib/app/link; echo run >> /var/lib/app/runs; wc -l < /var/lib/app/runs"]
    mounts: ["appdata:/var/lib/app"]
`)
	vol := e.volumeDir("keep", "appdata")
	out := e.MustRun("up").Stdout
	if !strings.Contains(out, "app | from the rootfs") || !strings.Contains(out, "app | 1") {
		t.Errorf("first up: want the copied file read through its symlink and one run:\n%s", out)
	}
	fi, err := os.Stat(vol)
	if err != nil {
		t.Fatalf("the volume is not where SPEC puts it: %v", err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o750 || st.Uid != 1234 || st.Gid != 5678 {
		t.Errorf("volume %s: mode %v owner %d:%d; want the rootfs directory's 0750 1234:5678", vol, fi.Mode(), st.Uid, st.Gid)
	}
	if fi, err := os.Stat(filepath.Join(vol, "conf.d/seeded")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("copied file: %v, %v; want mode 0640", fi, err)
	}
	e.DownLeavingNothing()
	if !exists(t, filepath.Join(vol, "runs")) {
		t.Fatalf("down removed the named volume's content")
	}

	// The second up finds what the first wrote, and copies nothing over it.
	if err := os.Remove(filepath.Join(vol, "conf.d/seeded")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vol, "conf.d/seeded"), []byte("changed in the volume\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out = e.MustRun("up").Stdout
	if !strings.Contains(out, "app | changed in the volume") || !strings.Contains(out, "app | 2") {
		t.Errorf("second up: want the volume's own file and a second run:\n%s", out)
	}

	// down -v removes the volumes, also when the supervisor was killed.
	e.manifest(`
name: keep
volumes:
  appdata: {}
containers:
  app:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "echo run >> /var/lib/app/runs; exec sleep 1000"]
    mounts: ["appdata:/var/lib/app"]
`)
	e.MustRun("up", "-d")
	sup := e.supervisorPid("keep")
	if err := syscall.Kill(sup, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e.WaitFor("the supervisor to die", func() bool { return !alive(sup) })
	e.DownLeavingNothing("-v")
	if exists(t, vol) || exists(t, filepath.Dir(vol)) {
		t.Errorf("down -v left %s", filepath.Dir(vol))
	}
	// Nothing to remove is no error.
	e.MustRun("down", "-v")
}

func TestE2ENamedVolumesAreTheStacks(t *testing.T) {
	e := newEnv(t)
	manifest := func(stack, command string) string {
		return "name: " + stack + "\nvolumes: {shared: {}}\ncontainers:\n  c:\n    rootfs: {{rootfs}}\n    command: [\"sh\", \"-c\", \"" + command + "\"]\n    mounts: [\"shared:/v\"]\n"
	}
	e.manifest(manifest("one", "echo one > /v/mine"))
	e.MustRun("up")
	e.manifest(manifest("two", "cat /v/mine 2>&1 || echo nothing here"))
	out := e.MustRun("up").Stdout
	if !strings.Contains(out, "c | nothing here") {
		t.Errorf("stack two sees stack one's volume:\n%s", out)
	}
	if b, err := os.ReadFile(filepath.Join(e.volumeDir("one", "shared"), "mine")); err != nil || string(b) != "one\n" {
		t.Errorf("stack one's volume: %q, %v", b, err)
	}
	e.MustRun("-p", "one", "down", "-v")
	if exists(t, e.volumeDir("one", "shared")) || !exists(t, e.volumeDir("two", "shared")) {
		t.Errorf("down -v of stack one must remove its volumes and only its")
	}
	e.DownLeavingNothing("-v")
	if exists(t, e.volumeDir("two", "shared")) {
		t.Errorf("down -v of stack two left its volume")
	}
}

func TestE2EReadOnlyVolumeRefusesWrites(t *testing.T) {
	e := newEnv(t)
	e.manifest(`
name: ro
volumes: {data: {}}
containers:
  reader:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "ls -A /data; echo x > /data/f"]
    mounts: ["data:/data:ro"]
`)
	r := e.Run("up")
	if r.Code != 1 || !strings.Contains(r.Stdout, "Read-only file system") {
		t.Errorf("up: exit %d, want 1 with a write refused:\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if exists(t, filepath.Join(e.volumeDir("ro", "data"), "f")) {
		t.Errorf("the write reached the volume")
	}
	e.DownLeavingNothing("-v")
}

func TestE2EMissingBindSourcesAreMade(t *testing.T) {
	e := newEnv(t)
	home := t.TempDir()
	// As sudo would leave it: the user behind it owns what up makes, and
	// without SUDO_USER, ~ is $HOME.
	e.ExtraEnv = append(e.ExtraEnv, "HOME="+home, "SUDO_USER=", "SUDO_UID=4321", "SUDO_GID=8765")
	e.manifest(`
name: binds
containers:
  c:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "echo in-project > /p/f && echo in-home > /h/f"]
    mounts: ["./made/by/up:/p", "~/stack/cache:/h"]
`)
	e.MustRun("up")
	for _, tc := range []struct{ dir, top, content string }{
		{filepath.Join(e.Dir, "made/by/up"), filepath.Join(e.Dir, "made"), "in-project\n"},
		{filepath.Join(home, "stack/cache"), filepath.Join(home, "stack"), "in-home\n"},
	} {
		if b, err := os.ReadFile(filepath.Join(tc.dir, "f")); err != nil || string(b) != tc.content {
			t.Errorf("%s/f: %q, %v; want what the container wrote", tc.dir, b, err)
		}
		for _, d := range []string{tc.top, tc.dir} {
			fi, err := os.Stat(d)
			if err != nil {
				t.Fatal(err)
			}
			if st := fi.Sys().(*syscall.Stat_t); !fi.IsDir() || fi.Mode().Perm() != 0o755 || st.Uid != 4321 || st.Gid != 8765 {
				t.Errorf("%s: %v owned by %d:%d; want a directory 0755 of 4321:8765", d, fi.Mode(), st.Uid, st.Gid)
			}
		}
	}
	// The parent that existed already is not touched.
	if fi, err := os.Stat(home); err != nil || fi.Sys().(*syscall.Stat_t).Uid == 4321 {
		t.Errorf("the home directory itself changed owner")
	}
	e.DownLeavingNothing()
	if !exists(t, filepath.Join(e.Dir, "made/by/up")) {
		t.Errorf("down removed a bind mount's host directory")
	}
}
