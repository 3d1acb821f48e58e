package imagepack

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// tree makes a small rootfs: a program, a directory, a symlink.
func tree(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "web")
	for _, d := range []string{"bin", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "server"), []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("server", filepath.Join(root, "bin", "srv")); err != nil {
		t.Fatal(err)
	}
	return root
}

// files lists the pushed image's layer as name -> content (or link target).
func files(t *testing.T, rc io.ReadCloser) map[string]string {
	t.Helper()
	defer rc.Close()
	out := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		out[h.Name] = string(data) + h.Linkname
	}
}

// TestPush packs a directory and an archive of it, pushes both to a
// registry on 127.0.0.1, and pulls them back by the digest Push returned.
func TestPush(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	root := tree(t)
	archive := filepath.Join(t.TempDir(), "web.tar")
	if out, err := exec.Command("tar", "-C", root, "-cf", archive, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	want := map[string]string{"bin/": "", "bin/server": "#!/bin/sh\necho hi\n", "bin/srv": "server", "etc/": ""}
	for _, rootfs := range []string{root, archive} {
		img, err := Image(rootfs)
		if err != nil {
			t.Fatal(err)
		}
		repo, err := Repository(host+"/team", "My_Stack", rootfs)
		if err != nil {
			t.Fatal(err)
		}
		if got := repo.RepositoryStr(); got != "team/my-stack/web" {
			t.Errorf("repository %q, want team/my-stack/web", got)
		}
		ref, err := Push(context.Background(), img, repo)
		if err != nil {
			t.Fatal(err)
		}
		pulled, err := remote.Image(ref)
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		d, _ := pulled.Digest()
		if d.String() != ref.DigestStr() {
			t.Errorf("pulled digest %s, pushed %s", d, ref.DigestStr())
		}
		cfg, err := pulled.ConfigFile()
		if err != nil || cfg.OS != "linux" {
			t.Errorf("config %+v, %v: want os linux", cfg, err)
		}
		layers, err := pulled.Layers()
		if err != nil || len(layers) != 1 {
			t.Fatalf("%d layers, %v; want 1", len(layers), err)
		}
		rc, err := layers[0].Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		got := files(t, rc)
		for name, content := range want {
			// tar(1) writes "./bin/"; the packer writes "bin/".
			c, ok := got[name]
			if !ok {
				c, ok = got["./"+name]
			}
			if !ok || c != content {
				t.Errorf("%s: layer has %q (present %v), want %q; layer: %v", rootfs, c, ok, content, got)
			}
		}
	}
	// The same tree packs into the same image.
	a, _ := Image(root)
	b, _ := Image(root)
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Errorf("two packs of one tree: %s and %s", da, db)
	}
}

type failTransport struct{ t *testing.T }

func (f failTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	f.t.Errorf("request to %s sent", req.URL)
	return nil, errors.New("sent")
}

// TestPlainHTTPOnlyOnLoopback: the transport refuses plain HTTP to a
// registry elsewhere before anything is sent.
func TestPlainHTTPOnlyOnLoopback(t *testing.T) {
	tr := httpOnLoopback{failTransport{t}}
	req, _ := http.NewRequest("GET", "http://10.1.2.3:5000/v2/", nil)
	if _, err := tr.RoundTrip(req); !errors.Is(err, errPlainHTTP) {
		t.Errorf("http to 10.1.2.3: %v, want errPlainHTTP", err)
	}
	for _, host := range []string{"localhost", "127.0.0.1", "127.5.6.7", "[::1]"} {
		if !loopback(strings.Trim(host, "[]")) {
			t.Errorf("%s is not taken as loopback", host)
		}
	}
}
