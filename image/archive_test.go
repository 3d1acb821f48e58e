package image

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stack-containers/stack/internal/imagetest"
	"github.com/stack-containers/stack/internal/testenv"
)

// writeTar archives the tree at dir, gzip-compressed when the name says so.
func writeTar(t *testing.T, dir, name string) string {
	t.Helper()
	data, err := imagetest.TarDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	var w io.WriteCloser = f
	if strings.HasSuffix(name, "gz") {
		w = gzip.NewWriter(f)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil && w != f {
		t.Fatal(err)
	}
	return p
}

// tarOf writes an archive of the given headers, each regular file holding
// "x".
func tarOf(t *testing.T, hdrs ...*tar.Header) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "evil.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for _, h := range hdrs {
		if h.Typeflag == tar.TypeReg {
			h.Size = 1
		}
		h.Mode = 0o755
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte("x"))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestArchiveRootfs(t *testing.T) {
	s := newStore(t)
	archive := writeTar(t, testenv.BusyboxRootfs(t), "rootfs.tar.gz")
	var inode uint64
	for i := range 2 {
		dir, err := s.Archive(archive)
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(filepath.Join(dir, "bin/busybox")); err != nil || fi.Size() == 0 {
			t.Fatalf("run %d: bin/busybox in the unpacked archive: %v", i, err)
		}
		unpacked := unpackedRootfs(t, s)
		if len(unpacked) != 1 {
			t.Fatalf("the store holds %v, want one unpacked rootfs", unpacked)
		}
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		ino := fi.Sys().(*syscall.Stat_t).Ino
		if i == 1 && ino != inode {
			t.Errorf("the archive was unpacked again (inode %d, then %d)", inode, ino)
		}
		inode = ino
	}
	if sums, err := os.ReadDir(filepath.Join(s.Root(), sumsDir)); err != nil || len(sums) != 1 {
		t.Errorf("remembered sums %v (%v), want the archive's one", sums, err)
	}

	// The same file, rewritten with other content: the remembered sum of
	// the old content must not be taken for it.
	changed := testenv.NewBusyboxRootfs(t)
	if err := os.WriteFile(filepath.Join(changed, "marker"), []byte("second archive\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	content, err := os.ReadFile(writeTar(t, changed, "rootfs.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(archive, content, 0o644); err != nil {
		t.Fatal(err)
	}
	dir, err := s.Archive(archive)
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "marker")); err != nil || string(data) != "second archive\n" {
		t.Fatalf("after the archive changed: marker %q, %v; want the new archive's content", data, err)
	}
	if unpacked := unpackedRootfs(t, s); len(unpacked) != 2 {
		t.Errorf("the store holds %v, want the old and the new rootfs", unpacked)
	}

	// Prune keeps an archive in use, and then removes it.
	use, err := s.ArchiveInUse(dir)
	if err != nil {
		t.Fatal(err)
	}
	if pruned, err := s.Prune(nil); err != nil || pruned.Archives != 1 {
		t.Errorf("prune with one archive in use: %+v, %v; want the other removed", pruned, err)
	}
	use.Release()
	if pruned, err := s.Prune(nil); err != nil || pruned.Archives != 1 {
		t.Errorf("prune with no archive in use: %+v, %v", pruned, err)
	}
	if sums, err := os.ReadDir(filepath.Join(s.Root(), sumsDir)); err != nil || len(sums) != 0 {
		t.Errorf("remembered sums %v (%v) after prune, want none", sums, err)
	}
}

// unpackedRootfs lists the unpacked archives in the store, leaving out the
// remembered sums.
func unpackedRootfs(t *testing.T, s *Store) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.Root(), archivesDir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.Name() != filepath.Base(sumsDir) {
			names = append(names, e.Name())
		}
	}
	return names
}

func TestArchiveEscapesRefused(t *testing.T) {
	outside := t.TempDir()
	tests := []struct {
		name string
		hdrs []*tar.Header
		want string
	}{
		{"dot-dot", []*tar.Header{{Name: "../evil", Typeflag: tar.TypeReg}}, `entry "../evil": ".." refused`},
		{"dot-dot inside", []*tar.Header{{Name: "a/../../evil", Typeflag: tar.TypeReg}}, `".." refused`},
		{"absolute", []*tar.Header{{Name: outside + "/evil", Typeflag: tar.TypeReg}}, "absolute path refused"},
		{"symlink out", []*tar.Header{{Name: "bin/evil", Typeflag: tar.TypeSymlink, Linkname: "../../evil"}}, "points outside the root"},
		{"hard link out", []*tar.Header{{Name: "evil", Typeflag: tar.TypeLink, Linkname: "../evil"}}, "points outside the root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			archive := tarOf(t, tt.hdrs...)
			_, err := s.Archive(archive)
			if err == nil {
				t.Fatal("Archive succeeded")
			}
			if !strings.HasPrefix(err.Error(), "rootfs "+archive+": ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to say %q", err, tt.want)
			}
			if unpacked := unpackedRootfs(t, s); len(unpacked) != 0 {
				t.Errorf("the store left with %v", unpacked)
			}
			if left := imagetest.TmpEntries(t, s.Root()); len(left) != 0 {
				t.Errorf("tmp/ left with %v", left)
			}
		})
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("files written outside the rootfs: %v", entries)
	}
}

func TestArchiveWritesStayInside(t *testing.T) {
	s := newStore(t)
	// An absolute symlink is legitimate in an image (it means the
	// container's root); an entry written through it must land inside.
	outside := t.TempDir()
	archive := tarOf(t,
		&tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: outside},
		&tar.Header{Name: "link/evil", Typeflag: tar.TypeReg},
	)
	dir, err := s.Archive(archive)
	if err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("files written outside the rootfs: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(dir, outside, "evil")); err != nil {
		t.Errorf("the entry did not land inside the rootfs: %v", err)
	}
}

func TestArchiveDeviceNodesSkipped(t *testing.T) {
	s := newStore(t)
	archive := tarOf(t,
		&tar.Header{Name: "dev", Typeflag: tar.TypeDir},
		&tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Devmajor: 8},
		&tar.Header{Name: "kmem", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 2},
	)
	dir, err := s.Archive(archive)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"dev/sda", "kmem"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v, want it skipped", p, err)
		}
	}
}

// TestArchiveUnpackBounded unpacks a tar bomb (a few KiB of gzip holding
// MiBs of zeros) and a tar of many empty files, each past the store's
// unpack limit: the unpack fails naming the limit, and leaves nothing in
// the store.
func TestArchiveUnpackBounded(t *testing.T) {
	bomb := filepath.Join(t.TempDir(), "bomb.tar.gz")
	f, err := os.Create(bomb)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	const size = 8 << 20
	if err := tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: size}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(tw, zeroReader{}, size); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(tw.Close(), zw.Close(), f.Close()); err != nil {
		t.Fatal(err)
	}
	var many []*tar.Header
	for i := range 3000 {
		many = append(many, &tar.Header{Name: fmt.Sprintf("f%d", i), Typeflag: tar.TypeReg, Mode: 0o644})
	}
	for name, archive := range map[string]string{"bomb": bomb, "many files": tarOf(t, many...)} {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			s.SetUnpackLimit(1 << 20)
			_, err := s.Archive(archive)
			var limit *UnpackLimitError
			if !errors.As(err, &limit) || !strings.Contains(err.Error(), "more than 1M") {
				t.Fatalf("Archive = %v, want the unpack limit of 1M", err)
			}
			if unpacked := unpackedRootfs(t, s); len(unpacked) != 0 {
				t.Errorf("the store left with %v", unpacked)
			}
			if left := imagetest.TmpEntries(t, s.Root()); len(left) != 0 {
				t.Errorf("tmp/ left with %v", left)
			}
		})
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
