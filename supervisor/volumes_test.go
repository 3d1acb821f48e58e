package supervisor

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stack-containers/stack/internal/testenv"
)

func TestMakeBindSourceMakesEachMissingDirForTheOwner(t *testing.T) {
	testenv.RequireRoot(t)
	owner := Owner{UID: 1234, GID: 5678}
	base := t.TempDir()
	p := filepath.Join(base, "a", "b")
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	if err := makeBindSource(p, owner); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(base, "a"), p} {
		fi, err := os.Lstat(d)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if !fi.IsDir() || fi.Mode().Perm() != 0o755 || int(st.Uid) != owner.UID || int(st.Gid) != owner.GID {
			t.Errorf("%s: mode %v, owner %d:%d; want a directory, 0755, %d:%d", d, fi.Mode(), st.Uid, st.Gid, owner.UID, owner.GID)
		}
	}
	// What exists is left as it is.
	kept := filepath.Join(base, "kept")
	if err := os.Mkdir(kept, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := makeBindSource(kept, owner); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(kept); fi.Mode().Perm() != 0o700 {
		t.Errorf("an existing directory was changed: %v", fi.Mode())
	}
}
