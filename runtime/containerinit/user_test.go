package containerinit

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const testPasswd = `root:x:0:0:root:/root:/bin/sh
toor:x:0:0:another root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
  # a comment, then lines too short or with a bad id
broken:x:1001
badgid:x:1002:nope:bad:/:/bin/sh
`

const testGroup = `root:x:0:
wheel:x:10:root
operator:x:11:toor
audio:x:63:other,app
video:x:44:app,other
#commented:x:45:app
short:63:app
bad:x:nope:app
staff:x:50:
app:x:1000:
again:x:63:app
lookalike:x:46:apps,xapp
  spaced:x:47:app  
`

// userRoot is a directory with etc/passwd and etc/group holding passwd
// and group ("" leaves the file out), and a descriptor of it.
func userRoot(t *testing.T, passwd, group string) (string, int) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"passwd": passwd, "group": group} {
		if content == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, "etc", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return dir, fd
}

func TestLookupUser(t *testing.T) {
	_, root := userRoot(t, testPasswd, testGroup)
	for _, tc := range []struct {
		spec     string
		uid, gid uint32
		groups   []uint32
	}{
		// Every group whose member list names the user, by its name
		// only, the primary group among them; lines too short, with a
		// bad gid or commented out skipped, a gid listed twice once.
		{"app", 1000, 1000, []uint32{44, 47, 63, 1000}},
		// A number is looked up as a uid: the name is its entry's.
		{"1000", 1000, 1000, []uint32{44, 47, 63, 1000}},
		{"root", 0, 0, []uint32{0, 10}},
		{"0", 0, 0, []uint32{0, 10}},
		// The name of the entry found, not only its uid.
		{"toor", 0, 0, []uint32{0, 11}},
		// An explicit group is the only one, as in Docker.
		{"app:staff", 1000, 50, []uint32{50}},
		{"app:63", 1000, 63, []uint32{63}},
		{"root:0", 0, 0, []uint32{0}},
		// No entry: no name to be a member by.
		{"1234", 1234, 0, []uint32{0}},
		{"1234:5678", 1234, 5678, []uint32{5678}},
		{"1234:wheel", 1234, 10, []uint32{10}},
	} {
		id, err := lookupUser(root, tc.spec)
		if err != nil {
			t.Errorf("%q: %v", tc.spec, err)
			continue
		}
		if id.uid != tc.uid || id.gid != tc.gid || !slices.Equal(id.groups, tc.groups) {
			t.Errorf("%q: uid %d gid %d groups %v, want %d %d %v", tc.spec, id.uid, id.gid, id.groups, tc.uid, tc.gid, tc.groups)
		}
	}
}

func TestLookupUserErrors(t *testing.T) {
	_, root := userRoot(t, testPasswd, testGroup)
	for _, tc := range []struct{ spec, want string }{
		{"", `want user[:group]`},
		{"app:", `want user[:group]`},
		{"ghost", `user "ghost": no such user in the container's /etc/passwd`},
		{"app:ghost", `group "ghost": no such group in the container's /etc/group`},
		{"badgid", `user "badgid": /etc/passwd: "nope" is not a uid or gid`},
		{"4294967295", `no such user`},
	} {
		if _, err := lookupUser(root, tc.spec); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error with %q", tc.spec, err, tc.want)
		}
	}
}

func TestLookupUserWithoutGroupFile(t *testing.T) {
	_, root := userRoot(t, testPasswd, "")
	id, err := lookupUser(root, "app")
	if err != nil || !slices.Equal(id.groups, []uint32{1000}) {
		t.Errorf("app without /etc/group: %+v, %v; want the primary group only", id, err)
	}
}

// TestLookupUserStaysInRoot: a symlink to an absolute path is followed
// inside the container's root, never to the host's file of that path.
func TestLookupUserStaysInRoot(t *testing.T) {
	host := filepath.Join(t.TempDir(), "group")
	if err := os.WriteFile(host, []byte("audio:x:63:app\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir, root := userRoot(t, testPasswd, "")
	if err := os.Symlink(host, filepath.Join(dir, "etc", "group")); err != nil {
		t.Fatal(err)
	}
	id, err := lookupUser(root, "app")
	if err != nil || !slices.Equal(id.groups, []uint32{1000}) {
		t.Errorf("app with /etc/group a link to %s: %+v, %v; want the primary group only", host, id, err)
	}
	// The same file, inside the root, is read.
	if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(host)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, host), []byte("audio:x:63:app\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id, err = lookupUser(root, "app")
	if err != nil || !slices.Equal(id.groups, []uint32{63, 1000}) {
		t.Errorf("app with /etc/group a link inside the root: %+v, %v; want [63 1000]", id, err)
	}
}

// TestLookupUserNotARegularFile: a FIFO would block the reader for good.
func TestLookupUserNotARegularFile(t *testing.T) {
	dir, root := userRoot(t, testPasswd, "")
	if err := unix.Mkfifo(filepath.Join(dir, "etc", "group"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := lookupUser(root, "app")
	if err == nil || !strings.Contains(err.Error(), "/etc/group: not a regular file") {
		t.Errorf("app with /etc/group a FIFO: %v, want it refused", err)
	}
}

func TestLookupUserGroupLimit(t *testing.T) {
	// groupLines lists app in n groups from gid 2000 on, each twice.
	groupLines := func(n int) string {
		var b strings.Builder
		for range 2 {
			for i := range n {
				fmt.Fprintf(&b, "g%d:x:%d:app\n", i, 2000+i)
			}
		}
		return b.String()
	}
	// With its primary group, the most the kernel takes.
	_, root := userRoot(t, testPasswd, groupLines(ngroupsMax-1))
	id, err := lookupUser(root, "app")
	if err != nil || len(id.groups) != ngroupsMax {
		t.Errorf("app in %d groups: %d groups, %v", ngroupsMax, len(id.groups), err)
	}
	_, root = userRoot(t, testPasswd, groupLines(ngroupsMax))
	_, err = lookupUser(root, "app")
	if err == nil || !strings.Contains(err.Error(), "more than 65536 groups") {
		t.Errorf("app in %d groups: %v, want it refused", ngroupsMax+1, err)
	}
	// One group on many more lines than the limit is one group, and the
	// lines after them are read.
	repeated := strings.Repeat("audio:x:63:app\n", 3*ngroupsMax) + "video:x:44:app\n"
	_, root = userRoot(t, testPasswd, repeated)
	id, err = lookupUser(root, "app")
	if err != nil || !slices.Equal(id.groups, []uint32{44, 63, 1000}) {
		t.Errorf("app in one group on %d lines, then another: %v, %v; want [44 63 1000]", 3*ngroupsMax, id.groups, err)
	}
}

func TestLookupUserLongLines(t *testing.T) {
	// A member list longer than bufio.Scanner's default 64 KiB.
	members := strings.Repeat("someone,", 100_000) + "app"
	_, root := userRoot(t, testPasswd, "big:x:70:"+members+"\n")
	id, err := lookupUser(root, "app")
	if err != nil || !slices.Equal(id.groups, []uint32{70, 1000}) {
		t.Errorf("app in a group of %d bytes: %+v, %v", len(members), id, err)
	}
	// Past a MiB the line is refused, not read into memory whole.
	members = strings.Repeat("someone,", maxLine/8) + "app"
	_, root = userRoot(t, testPasswd, "big:x:70:"+members+"\n")
	if _, err := lookupUser(root, "app"); err == nil || !strings.Contains(err.Error(), "read the container's /etc/group") {
		t.Errorf("app in a group of %d bytes: %v, want it refused", len(members), err)
	}
}
