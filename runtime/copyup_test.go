package runtime

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/testenv"
)

// The copy itself is containerinit's (copyUp) and tested there; this is
// a named volume's copy-up through a whole start.

// TestCopyUpFromImageLayers starts containers whose root is an image's
// stacked layers: the volume receives the content the container sees at
// the mount path, the top layer's whiteouts applied, whatever layer each
// file comes from.
func TestCopyUpFromImageLayers(t *testing.T) {
	testenv.RequireRoot(t)
	middle, top := t.TempDir(), t.TempDir()
	for _, f := range []struct{ dir, name, body string }{
		{middle, "data/from-middle", "middle\n"},
		{middle, "data/hidden-by-top", "gone\n"},
		{middle, "data/sub/kept", "kept\n"},
		{top, "data/from-top", "top\n"},
	} {
		p := filepath.Join(f.dir, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mknod(filepath.Join(top, "data/hidden-by-top"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	for _, readOnly := range []bool{false, true} {
		volume := t.TempDir()
		spec := newSpec(t, "", "sh", "-c", "cat /data/from-top; echo written > /data/by-container")
		spec.Layers = []string{testenv.BusyboxRootfs(t), middle, top}
		spec.ReadOnly = readOnly
		spec.Mounts = []Mount{{Source: volume, Target: "/data", CopyUp: true}}
		out, st := run(t, spec)
		if st.Code != 0 || out != "top\n" {
			t.Errorf("read_only %v: exit %+v, output %q", readOnly, st, out)
		}
		got := entries(t, volume)
		want := []string{".", "by-container", "from-middle", "from-top", "sub", "sub/kept"}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("read_only %v: the volume holds %q, want %q", readOnly, got, want)
		}
	}
}

// entries lists the paths under dir, dir itself as ".", in lexical order.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		out = append(out, rel)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
