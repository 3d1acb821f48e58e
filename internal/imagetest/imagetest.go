// Package imagetest builds small real images from the busybox tree and
// serves them from a registry inside the test process on 127.0.0.1, for
// the image store's tests and the end-to-end ones. Nothing reaches beyond
// the loopback.
package imagetest

import (
	"archive/tar"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/stack-containers/stack/internal/busybox"
	"github.com/stack-containers/stack/internal/testenv"
)

// Registry is a registry on 127.0.0.1 that counts the blobs it serves and
// lets a test step in before it answers.
type Registry struct {
	Server *httptest.Server
	// Host is HOST:PORT, to put in front of a repository.
	Host string

	mu    sync.Mutex
	gets  map[string]int
	hook  func(w http.ResponseWriter, r *http.Request) bool
	inner http.Handler
}

// NewRegistry starts a registry that ends with the test.
func NewRegistry(t testing.TB) *Registry {
	t.Helper()
	return NewRegistryIn(t, "")
}

// NewRegistryIn starts a registry listening on 127.0.0.1 of the network
// namespace at netns (a /proc/PID/ns/net path; "" for the test's own), so
// that a stack run in that namespace reaches it. The test itself pushes
// through the handler, whatever the namespace.
func NewRegistryIn(t testing.TB, netns string) *Registry {
	t.Helper()
	r := &Registry{gets: map[string]int{}, inner: registry.New(registry.Logger(discardLogger()))}
	r.Server = httptest.NewUnstartedServer(r)
	if netns != "" {
		l, err := listenIn(netns)
		if err != nil {
			t.Fatalf("registry in %s: %v", netns, err)
		}
		r.Server.Listener.Close()
		r.Server.Listener = l
	}
	r.Server.Start()
	t.Cleanup(r.Server.Close)
	r.Host = strings.TrimPrefix(r.Server.URL, "http://")
	return r
}

// handlerTransport answers requests with the registry's handler, without
// any network.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// As a server sees it: a body always there, if empty.
	in := req.Clone(req.Context())
	if in.Body == nil {
		in.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, in)
	res := rec.Result()
	// Clients resolve the Location of an upload against it.
	res.Request = req
	return res, nil
}

func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	hook := r.hook
	if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/") {
		r.gets[req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:]]++
	}
	r.mu.Unlock()
	if hook != nil && hook(w, req) {
		return
	}
	r.inner.ServeHTTP(w, req)
}

// Hook sets a function that sees every request first; when it returns
// true it has answered, and the registry does not. nil removes it.
func (r *Registry) Hook(h func(w http.ResponseWriter, req *http.Request) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hook = h
}

// BlobGets is how many times the blob with digest was fetched.
func (r *Registry) BlobGets(digest v1.Hash) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gets[digest.String()]
}

// Ref is HOST:PORT/repo.
func (r *Registry) Ref(repo string) string { return r.Host + "/" + repo }

// Push puts img in the registry as ref (repo:tag), by HTTP as any client.
func (r *Registry) Push(t testing.TB, repoTag string, img v1.Image) {
	t.Helper()
	ref, err := name.ParseReference(r.Ref(repoTag), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithTransport(handlerTransport{r.inner})); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// PushIndex puts idx in the registry as repoTag.
func (r *Registry) PushIndex(t testing.TB, repoTag string, idx v1.ImageIndex) {
	t.Helper()
	ref, err := name.ParseReference(r.Ref(repoTag), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, remote.WithTransport(handlerTransport{r.inner})); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// Entry is one entry of a layer built by Layer.
type Entry struct {
	Name     string
	Type     byte // tar.TypeReg when 0
	Mode     int64
	Body     string
	Linkname string
	Uid, Gid int
	Devmajor int64
}

// Layer makes a layer of the entries, in their order.
func Layer(t testing.TB, entries ...Entry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.Name, Typeflag: e.Type, Mode: e.Mode, Linkname: e.Linkname,
			Uid: e.Uid, Gid: e.Gid, Devmajor: e.Devmajor, ModTime: busybox.Epoch(), Format: tar.FormatPAX}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
			if hdr.Typeflag == tar.TypeDir {
				hdr.Mode = 0o755
			}
		}
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.Body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.Body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return layerOf(t, buf.Bytes())
}

func layerOf(t testing.TB, data []byte) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

var (
	baseOnce  sync.Once
	baseLayer []byte
	baseErr   error
)

// BaseLayer is the busybox tree as one layer: the same bytes, so the same
// digest, every time.
func BaseLayer(t testing.TB) v1.Layer {
	t.Helper()
	baseOnce.Do(func() {
		dir, err := os.MkdirTemp("", "imagetest-base-")
		if err != nil {
			baseErr = err
			return
		}
		defer os.RemoveAll(dir)
		if baseErr = busybox.Install(dir); baseErr != nil {
			return
		}
		baseLayer, baseErr = TarDir(dir)
	})
	if baseErr != nil {
		testenv.SkipOrFail(t, "busybox layer: "+baseErr.Error())
	}
	return layerOf(t, baseLayer)
}

// TarDir archives the tree at dir, entries in lexical order, owned by
// root, stamped busybox.Epoch.
func TarDir(dir string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr.Name = filepath.ToSlash(rel)
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = busybox.Epoch(), busybox.Epoch(), busybox.Epoch()
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// AppPasswd is /etc/passwd of App's image: the user app is 1000:1000.
const AppPasswd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"

// App is the image most tests use: busybox at the bottom, then a layer
// that adds the user app and files, then one that deletes a file of the
// layer below (a whiteout) and replaces the content of a directory (an
// opaque one). Its config has an ENTRYPOINT and a CMD, ENV, WORKDIR and
// USER by name, and a HEALTHCHECK.
//
// Run as it is, it prints "entry default-cmd GREETING=from-image
// pwd=/app id=1000:1000".
func App(t testing.TB) v1.Image {
	t.Helper()
	users := Layer(t,
		Entry{Name: "etc/passwd", Body: AppPasswd},
		Entry{Name: "etc/group", Body: "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n"},
		Entry{Name: "app", Type: tar.TypeDir, Uid: 1000, Gid: 1000},
		Entry{Name: "app/old", Type: tar.TypeDir},
		Entry{Name: "app/old/a.txt", Body: "a from layer 2\n"},
		Entry{Name: "app/old/b.txt", Body: "b from layer 2\n"},
		Entry{Name: "removed.txt", Body: "deleted by layer 3\n"},
		Entry{Name: "home/app", Type: tar.TypeDir, Uid: 1000, Gid: 1000},
		Entry{Name: "app/entry.sh", Mode: 0o755, Body: "#!/bin/sh\n" +
			`echo entry "$@" GREETING=$GREETING pwd=$(pwd) id=$(id -u):$(id -g)` + "\n"},
	)
	changes := Layer(t,
		Entry{Name: ".wh.removed.txt"},
		Entry{Name: "app", Type: tar.TypeDir, Uid: 1000, Gid: 1000},
		Entry{Name: "app/old", Type: tar.TypeDir},
		Entry{Name: "app/old/.wh..wh..opq"},
		Entry{Name: "app/old/c.txt", Body: "c from layer 3\n"},
		Entry{Name: "app/hello.txt", Body: "hello from layer 3\n"},
	)
	img, err := mutate.AppendLayers(empty.Image, BaseLayer(t), users, changes)
	if err != nil {
		t.Fatal(err)
	}
	return withConfig(t, img, v1.Config{
		Entrypoint: []string{"/app/entry.sh"},
		Cmd:        []string{"default-cmd"},
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=from-image"},
		WorkingDir: "/app",
		User:       "app",
		Healthcheck: &v1.HealthConfig{
			Test: []string{"CMD-SHELL", "test -f /app/hello.txt"},
		},
	})
}

// Other is a second image on the same busybox layer, with a layer of its
// own on top.
func Other(t testing.TB) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, BaseLayer(t),
		Layer(t, Entry{Name: "other.txt", Body: "other\n"}))
	if err != nil {
		t.Fatal(err)
	}
	return withConfig(t, img, v1.Config{Cmd: []string{"/bin/cat", "/other.txt"}})
}

// WithLayer is a busybox image with one more layer of the entries.
func WithLayer(t testing.TB, entries ...Entry) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, BaseLayer(t), Layer(t, entries...))
	if err != nil {
		t.Fatal(err)
	}
	return withConfig(t, img, v1.Config{Cmd: []string{"/bin/true"}})
}

// withConfig sets the config, and the host's platform as the image's.
func withConfig(t testing.TB, img v1.Image, cfg v1.Config) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config = cfg
	cf.OS, cf.Architecture = "linux", hostArch()
	cf.Created = v1.Time{Time: busybox.Epoch()}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// ForPlatform is img claiming another platform in its config.
func ForPlatform(t testing.TB, img v1.Image, arch string) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Architecture = arch
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Index is a multi-platform index: img for the host's platform, and each
// of others for the architecture it is keyed by.
func Index(t testing.TB, img v1.Image, others map[string]v1.Image) v1.ImageIndex {
	t.Helper()
	adds := []mutate.IndexAddendum{{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: hostArch()}}}}
	for arch, o := range others {
		adds = append(adds, mutate.IndexAddendum{Add: ForPlatform(t, o, arch),
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	return mutate.AppendManifests(empty.Index, adds...)
}

// WriteOCILayout writes img into a new OCI layout at dir, tagged tag.
func WriteOCILayout(t testing.TB, dir, tag string, img v1.Image) {
	t.Helper()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
		t.Fatal(err)
	}
}

// WriteOCIArchive writes img as a tar of an OCI layout, tagged tag.
func WriteOCIArchive(t testing.TB, file, tag string, img v1.Image) {
	t.Helper()
	dir := t.TempDir()
	WriteOCILayout(t, dir, tag, img)
	data, err := TarDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// WriteDockerArchive writes img as `docker save` does, named ref.
func WriteDockerArchive(t testing.TB, file, ref string, img v1.Image) {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(file, tag, img); err != nil {
		t.Fatal(err)
	}
}

// ServeInner answers r as the registry would, past any hook.
func (r *Registry) ServeInner(w http.ResponseWriter, req *http.Request) { r.inner.ServeHTTP(w, req) }

// TmpEntries lists what the tmp/ of the image store at root holds: what a
// pull or an unpack left half made.
func TmpEntries(t testing.TB, root string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
