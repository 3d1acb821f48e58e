package pull

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/image"
	"github.com/stack-containers/stack/internal/imagetest"
	"github.com/stack-containers/stack/internal/testenv"
)

func newStore(t *testing.T) *image.Store {
	t.Helper()
	testenv.RequireRoot(t)
	s, err := image.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func registrySource(t *testing.T, reg *imagetest.Registry, repoTag string) image.Source {
	t.Helper()
	src, err := image.ParseSource(reg.Ref(repoTag), "/")
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func mustPull(t *testing.T, s *image.Store, src image.Source) *image.Image {
	t.Helper()
	img, err := Image(context.Background(), s, src, image.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func configDigest(t *testing.T, img v1.Image) string {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func layerDigests(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []v1.Hash
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

func TestPullFromRegistry(t *testing.T) {
	s := newStore(t)
	reg := imagetest.NewRegistry(t)
	app := imagetest.App(t)
	reg.Push(t, "app:v1", app)
	img := mustPull(t, s, registrySource(t, reg, "app:v1"))

	if img.ID != configDigest(t, app) {
		t.Errorf("ID %s, want the config's digest %s", img.ID, configDigest(t, app))
	}
	if want := reg.Host + "/app:v1"; img.Reference != want {
		t.Errorf("reference %q, want %q", img.Reference, want)
	}
	c := img.Config
	if strings.Join(c.Entrypoint, " ") != "/app/entry.sh" || strings.Join(c.Cmd, " ") != "default-cmd" ||
		c.WorkingDir != "/app" || c.User != "app" || !strings.Contains(strings.Join(c.Env, " "), "GREETING=from-image") {
		t.Errorf("config %+v", c)
	}
	if c.Healthcheck == nil || strings.Join(c.Healthcheck.Test, " ") != "CMD-SHELL test -f /app/hello.txt" {
		t.Errorf("healthcheck %+v", c.Healthcheck)
	}
	if len(img.LayerDirs) != 3 {
		t.Fatalf("%d layer dirs, want 3", len(img.LayerDirs))
	}
	top := img.LayerDirs[2]
	// The whiteout, in overlayfs's form.
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(top, "removed.txt"), &st); err != nil {
		t.Fatalf("whiteout: %v", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("whiteout: mode %o rdev %d, want a character device 0:0", st.Mode, st.Rdev)
	}
	if _, err := os.Lstat(filepath.Join(top, ".wh.removed.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf(".wh.removed.txt left in the layer: %v", err)
	}
	buf := make([]byte, 8)
	n, err := unix.Getxattr(filepath.Join(top, "app/old"), "trusted.overlay.opaque", buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque dir: trusted.overlay.opaque = %q, %v", buf[:n], err)
	}
	if _, err := os.Lstat(filepath.Join(top, "app/old/.wh..wh..opq")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("opaque marker left in the layer: %v", err)
	}
	// And as overlayfs reads them: the file is gone, the directory holds
	// only the top layer's content.
	merged := overlay(t, img.LayerDirs)
	if _, err := os.Lstat(filepath.Join(merged, "removed.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("removed.txt through the overlay: %v, want it gone", err)
	}
	entries, err := os.ReadDir(filepath.Join(merged, "app/old"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "c.txt" {
		t.Errorf("app/old through the overlay holds %v, want only c.txt", entries)
	}
	if data, err := os.ReadFile(filepath.Join(merged, "bin/busybox")); err != nil || len(data) == 0 {
		t.Errorf("bin/busybox through the overlay: %d bytes, %v", len(data), err)
	}
	var appSt unix.Stat_t
	if err := unix.Stat(filepath.Join(merged, "app"), &appSt); err != nil || appSt.Uid != 1000 {
		t.Errorf("app owned by %d, want 1000 (%v)", appSt.Uid, err)
	}

	// Looked up again, without the registry.
	got, err := s.Lookup(registrySource(t, reg, "app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != img.ID || len(got.LayerDirs) != 3 || got.Size != img.Size || img.Size == 0 {
		t.Errorf("lookup %+v, pulled %+v", got.Record, img.Record)
	}
	if left := imagetest.TmpEntries(t, s.Root()); len(left) != 0 {
		t.Errorf("tmp/ holds %v after the pull", left)
	}
}

// overlay mounts the layers (bottom first) read-only and returns where.
func overlay(t *testing.T, layers []string) string {
	t.Helper()
	var lower []string
	for i := len(layers) - 1; i >= 0; i-- {
		lower = append(lower, layers[i])
	}
	merged := t.TempDir()
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(lower, ":")); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", merged, err)
		}
	})
	return merged
}

func TestSharedLayerUnpackedOnce(t *testing.T) {
	s := newStore(t)
	reg := imagetest.NewRegistry(t)
	app, other := imagetest.App(t), imagetest.Other(t)
	reg.Push(t, "app", app)
	reg.Push(t, "other", other)
	a := mustPull(t, s, registrySource(t, reg, "app"))
	b := mustPull(t, s, registrySource(t, reg, "other"))
	if a.LayerDirs[0] != b.LayerDirs[0] {
		t.Errorf("the busybox layer is %s for one image and %s for the other", a.LayerDirs[0], b.LayerDirs[0])
	}
	base := layerDigests(t, app)[0]
	if n := reg.BlobGets(base); n != 1 {
		t.Errorf("the shared layer was fetched %d times, want 1", n)
	}
	entries, err := os.ReadDir(filepath.Join(s.Root(), "layers"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 4 {
		t.Errorf("%d layers unpacked, want 4 (3 + 1 of its own)", len(entries))
	}
}

func TestConcurrentPullsFetchOnce(t *testing.T) {
	s := newStore(t)
	reg := imagetest.NewRegistry(t)
	app := imagetest.App(t)
	reg.Push(t, "app", app)
	const pulls = 4
	var wg sync.WaitGroup
	errs := make([]error, pulls)
	ids := make([]string, pulls)
	for i := range pulls {
		// Each pull its own Store value, as two stack processes would
		// have: the flocks are per open file, so they exclude each other
		// as across processes.
		other, err := image.Open(filepath.Dir(s.Root()))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			img, err := Image(context.Background(), other, registrySource(t, reg, "app"), image.PullOptions{})
			errs[i] = err
			if err == nil {
				ids[i] = img.ID
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("pull %d: %v", i, err)
		}
		if ids[i] != configDigest(t, app) {
			t.Errorf("pull %d: ID %s", i, ids[i])
		}
	}
	for _, d := range layerDigests(t, app) {
		if n := reg.BlobGets(d); n != 1 {
			t.Errorf("layer %s fetched %d times by %d pulls at once, want 1", d, n, pulls)
		}
	}
}

// TestMain runs the helper pull when asked to (see TestKilledPullRecovers).
func TestMain(m *testing.M) {
	if ref := os.Getenv("IMAGE_TEST_HELPER_PULL"); ref != "" {
		s, err := image.Open(os.Getenv("IMAGE_TEST_HELPER_DATA"))
		if err == nil {
			var src image.Source
			if src, err = image.ParseSource(ref, "/"); err == nil {
				_, err = Image(context.Background(), s, src, image.PullOptions{})
			}
		}
		fmt.Fprintln(os.Stderr, "helper pull:", err)
		os.Exit(3)
	}
	os.Exit(m.Run())
}

func TestKilledPullRecovers(t *testing.T) {
	s := newStore(t)
	reg := imagetest.NewRegistry(t)
	app := imagetest.App(t)
	reg.Push(t, "app", app)
	base := layerDigests(t, app)[0]

	// The busybox layer's blob comes half, then stalls until the pulling
	// process is killed.
	halfway := make(chan struct{})
	var once sync.Once
	reg.Hook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, base.String()) {
			return false
		}
		rec := &bufferWriter{header: http.Header{}}
		reg.ServeInner(rec, r)
		w.Header().Set("Content-Length", fmt.Sprint(rec.body.Len()))
		w.WriteHeader(http.StatusOK)
		w.Write(rec.body.Bytes()[:rec.body.Len()/2])
		w.(http.Flusher).Flush()
		once.Do(func() { close(halfway) })
		<-r.Context().Done()
		return true
	})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "IMAGE_TEST_HELPER_PULL="+reg.Ref("app"), "IMAGE_TEST_HELPER_DATA="+filepath.Dir(s.Root()))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	<-halfway
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	reg.Hook(nil)

	if len(imagetest.TmpEntries(t, s.Root())) == 0 {
		t.Fatal("the killed pull left nothing in tmp/: the test did not kill it mid-layer")
	}
	if _, err := s.Lookup(registrySource(t, reg, "app")); !errors.Is(err, image.ErrNotFound) {
		t.Fatalf("after a killed pull, lookup: %v, want not found", err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "layers", strings.TrimPrefix(layerDigestsDiff(t, app)[0], "sha256:"))); err == nil {
		t.Fatal("the half-fetched layer is in layers/")
	}
	img := mustPull(t, s, registrySource(t, reg, "app"))
	if img.ID != configDigest(t, app) {
		t.Errorf("ID %s after the retry", img.ID)
	}
	merged := overlay(t, img.LayerDirs)
	if data, err := os.ReadFile(filepath.Join(merged, "app/hello.txt")); err != nil || string(data) != "hello from layer 3\n" {
		t.Errorf("app/hello.txt: %q, %v", data, err)
	}
	if left := imagetest.TmpEntries(t, s.Root()); len(left) != 0 {
		t.Errorf("tmp/ still holds %v after a good pull", left)
	}
}

func layerDigestsDiff(t *testing.T, img v1.Image) []string {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range cf.RootFS.DiffIDs {
		out = append(out, d.String())
	}
	return out
}

type bufferWriter struct {
	header http.Header
	body   bytes.Buffer
	code   int
}

func (b *bufferWriter) Header() http.Header         { return b.header }
func (b *bufferWriter) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferWriter) WriteHeader(code int)        { b.code = code }

func TestCorruptedBlobDetected(t *testing.T) {
	s := newStore(t)
	reg := imagetest.NewRegistry(t)
	app := imagetest.App(t)
	reg.Push(t, "app", app)
	top := layerDigests(t, app)[2]
	// The registry serves the top layer with its content changed: same
	// length, right gzip, wrong bytes.
	reg.Hook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, top.String()) {
			return false
		}
		evil := imagetest.Layer(t, imagetest.Entry{Name: "app/hello.txt", Body: "HELLO FROM LAYER 3\n"})
		rc, _ := evil.Compressed()
		defer rc.Close()
		io.Copy(w, rc)
		return true
	})
	_, err := Image(context.Background(), s, registrySource(t, reg, "app"), image.PullOptions{})
	if err == nil || !strings.Contains(err.Error(), top.String()) && !strings.Contains(err.Error(), "digest") {
		t.Fatalf("pull of a corrupted layer: %v, want an error naming the digest", err)
	}
	if _, err := s.Lookup(registrySource(t, reg, "app")); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("lookup after the failed pull: %v", err)
	}
	if left := imagetest.TmpEntries(t, s.Root()); len(left) != 0 {
		t.Errorf("tmp/ holds %v after the failed pull", left)
	}

	// A blob corrupted in the store is found out when read.
	reg.Hook(nil)
	img := mustPull(t, s, registrySource(t, reg, "app"))
	blob := filepath.Join(s.Root(), "blobs/sha256", strings.TrimPrefix(img.ID, "sha256:"))
	if err := os.WriteFile(blob, []byte(`{"config":{}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(registrySource(t, reg, "app")); err == nil || !strings.Contains(err.Error(), "corrupted") {
		t.Errorf("lookup of an image with a corrupted config: %v", err)
	}
	// And pull_policy missing puts it right.
	if _, err := s.Get(context.Background(), registrySource(t, reg, "app"), image.PullMissing, Image, image.PullOptions{}); err != nil {
		t.Errorf("get after the corruption: %v", err)
	}
}

func TestEscapingLayerRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		entry imagetest.Entry
	}{
		{"dotdot", imagetest.Entry{Name: "../escape.txt", Body: "x"}},
		{"absolute", imagetest.Entry{Name: "/abs.txt", Body: "x"}},
		{"symlink", imagetest.Entry{Name: "etc/evil", Type: tar.TypeSymlink, Linkname: "../../../../etc"}},
		{"hardlink", imagetest.Entry{Name: "evil", Type: tar.TypeLink, Linkname: "../../etc/passwd"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			reg := imagetest.NewRegistry(t)
			reg.Push(t, "evil", imagetest.WithLayer(t, tc.entry))
			_, err := Image(context.Background(), s, registrySource(t, reg, "evil"), image.PullOptions{})
			if err == nil || !strings.Contains(err.Error(), "refused") {
				t.Fatalf("pull: %v, want a refusal", err)
			}
			if left := imagetest.TmpEntries(t, s.Root()); len(left) != 0 {
				t.Errorf("tmp/ holds %v", left)
			}
		})
	}
}

func TestDeviceNodesSkipped(t *testing.T) {
	s := newStore(t)
	reg := imagetest.NewRegistry(t)
	reg.Push(t, "dev", imagetest.WithLayer(t,
		imagetest.Entry{Name: "dev", Type: tar.TypeDir},
		imagetest.Entry{Name: "dev/sda", Type: tar.TypeBlock, Devmajor: 8},
		imagetest.Entry{Name: "mem", Type: tar.TypeChar, Devmajor: 1},
		imagetest.Entry{Name: "fifo", Type: tar.TypeFifo},
	))
	img := mustPull(t, s, registrySource(t, reg, "dev"))
	top := img.LayerDirs[1]
	for _, p := range []string{"dev/sda", "mem"} {
		if _, err := os.Lstat(filepath.Join(top, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %v, want it skipped", p, err)
		}
	}
	if fi, err := os.Lstat(filepath.Join(top, "fifo")); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("fifo: %v %v", fi, err)
	}
}

func TestMultiPlatformIndex(t *testing.T) {
	s := newStore(t)
	reg := imagetest.NewRegistry(t)
	app := imagetest.App(t)
	reg.PushIndex(t, "multi", imagetest.Index(t, app, map[string]v1.Image{imagetest.OtherArch(): imagetest.Other(t)}))
	img := mustPull(t, s, registrySource(t, reg, "multi"))
	if img.ID != configDigest(t, app) {
		t.Errorf("picked %s, want the host's image %s", img.ID, configDigest(t, app))
	}
}

func TestLocalSources(t *testing.T) {
	s := newStore(t)
	app := imagetest.App(t)
	dir := t.TempDir()
	imagetest.WriteOCILayout(t, filepath.Join(dir, "layout"), "v1", app)
	imagetest.WriteOCIArchive(t, filepath.Join(dir, "app.oci.tar"), "v1", app)
	imagetest.WriteDockerArchive(t, filepath.Join(dir, "app.docker.tar"), "example.com/app:v1", app)
	for _, ref := range []string{"oci:layout:v1", "oci:layout", "oci-archive:app.oci.tar:v1", "docker-archive:app.docker.tar", "docker-archive:app.docker.tar:example.com/app:v1"} {
		t.Run(ref, func(t *testing.T) {
			src, err := image.ParseSource(ref, dir)
			if err != nil {
				t.Fatal(err)
			}
			img := mustPull(t, s, src)
			if img.ID != configDigest(t, app) {
				t.Errorf("ID %s, want %s", img.ID, configDigest(t, app))
			}
			if strings.Join(img.Layers, " ") != strings.Join(layerDigestsDiff(t, app), " ") || img.Config.User != "app" {
				t.Errorf("record %+v", img.Record)
			}
		})
	}
	src, _ := image.ParseSource("oci:layout:nope", dir)
	if _, err := Image(context.Background(), s, src, image.PullOptions{}); err == nil || !strings.Contains(err.Error(), `no image tagged "nope"`) {
		t.Errorf("unknown tag: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(s.Root(), "layers"))
	if len(entries) != 3 {
		t.Errorf("%d layers unpacked for one image from four sources, want 3", len(entries))
	}
}

func TestPullErrors(t *testing.T) {
	s := newStore(t)
	reg := imagetest.NewRegistry(t)
	reg.Push(t, "app", imagetest.App(t))
	reg.PushIndex(t, "foreign", imagetest.Index(t, imagetest.ForPlatform(t, imagetest.Other(t), imagetest.OtherArch()), nil))
	reg.Push(t, "foreign-image", imagetest.ForPlatform(t, imagetest.Other(t), imagetest.OtherArch()))
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	closed.Close()
	for _, tc := range []struct {
		ref, want string
	}{
		{reg.Ref("missing:v1"), "NAME_UNKNOWN"},
		{reg.Ref("app:nope"), "MANIFEST_UNKNOWN"},
		{refused + "/app", "connection refused"},
		{reg.Ref("foreign"), "platform"},
		{reg.Ref("foreign-image"), "platform"},
	} {
		src, err := image.ParseSource(tc.ref, "/")
		if err != nil {
			t.Fatal(err)
		}
		_, err = Image(context.Background(), s, src, image.PullOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), src.String()) {
			t.Errorf("pull %s: %v, want an error naming it and saying %q", tc.ref, err, tc.want)
		}
	}
	if _, err := s.Get(context.Background(), registrySource(t, reg, "app"), image.PullNever, Image, image.PullOptions{}); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("pull_policy never, image missing: %v", err)
	}
}

func TestCredentialsFromDockerConfig(t *testing.T) {
	s := newStore(t)
	reg := imagetest.NewRegistry(t)
	reg.Push(t, "private", imagetest.Other(t))
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	reg.Hook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") == want {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
		return true
	})
	config := t.TempDir()
	t.Setenv("DOCKER_CONFIG", config)
	src := registrySource(t, reg, "private")
	if _, err := Image(context.Background(), s, src, image.PullOptions{}); err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") {
		t.Fatalf("pull without credentials: %v, want UNAUTHORIZED", err)
	}
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.Host, base64.StdEncoding.EncodeToString([]byte("alice:s3cret")))
	if err := os.WriteFile(filepath.Join(config, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Image(context.Background(), s, src, image.PullOptions{}); err != nil {
		t.Fatalf("pull with the Docker config's credentials: %v", err)
	}
}

func TestPruneKeepsWhatIsInUse(t *testing.T) {
	s := newStore(t)
	reg := imagetest.NewRegistry(t)
	reg.Push(t, "app", imagetest.App(t))
	reg.Push(t, "other", imagetest.Other(t))
	app := mustPull(t, s, registrySource(t, reg, "app"))
	mustPull(t, s, registrySource(t, reg, "other"))
	use, err := s.Use(app)
	if err != nil {
		t.Fatal(err)
	}
	pruned, err := s.Prune(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(pruned.Images) != 1 || !strings.HasSuffix(pruned.Images[0], "/other:latest") || pruned.Layers != 1 {
		t.Errorf("pruned %+v, want other's record and its one layer of its own", pruned)
	}
	if _, err := s.Lookup(registrySource(t, reg, "app")); err != nil {
		t.Errorf("the image in use after prune: %v", err)
	}
	if _, err := s.Lookup(registrySource(t, reg, "other")); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("the unused image after prune: %v", err)
	}
	use.Release()
	if _, err := s.Prune(map[string]bool{app.ID: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(registrySource(t, reg, "app")); err != nil {
		t.Errorf("the image prune was told to keep: %v", err)
	}
	if _, err := s.Prune(nil); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"layers", "blobs/sha256", "refs", "tmp"} {
		if entries, _ := os.ReadDir(filepath.Join(s.Root(), d)); len(entries) != 0 {
			t.Errorf("%s holds %d entries after a prune of everything", d, len(entries))
		}
	}
}
