package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stack-containers/stack/internal/imagetest"
)

// appOutput is what imagetest.App prints run as it is.
const appOutput = "entry default-cmd GREETING=from-image pwd=/app id=1000:1000"

// TestImageSources runs one image got four ways (a registry on 127.0.0.1,
// an OCI layout, an OCI archive, a docker-archive) with its config as
// the defaults, and with the manifest overriding each default.
func TestImageSources(t *testing.T) {
	e := newEnv(t)
	reg := e.registry()
	app := imagetest.App(t)
	reg.Push(t, "team/app:v1", app)
	imagetest.WriteOCILayout(t, filepath.Join(e.Dir, "layout"), "v1", app)
	imagetest.WriteOCIArchive(t, filepath.Join(e.Dir, "app.oci.tar"), "v1", app)
	imagetest.WriteDockerArchive(t, filepath.Join(e.Dir, "app.docker.tar"), "example.com/app:v1", app)
	e.manifest(fmt.Sprintf(`
containers:
  registry:
    image: %[1]s
  layout:
    image: oci:layout:v1
  ociarchive:
    image: oci-archive:app.oci.tar:v1
  dockerarchive:
    image: docker-archive:app.docker.tar
  args:
    image: %[1]s
    command: [from-manifest]
    env: {GREETING: from-manifest}
    workdir: /home/app
    user: root
  named:
    rootfs: {{rootfs}}
    command: [id]
    user: nobody
  shell:
    image: %[1]s
    entrypoint: ["/bin/sh", "-c"]
    command: ["cat /app/hello.txt; test -e /removed.txt || echo removed-gone; ls /app/old; id -un; touch /app/new && echo wrote"]
`, reg.Ref("team/app:v1")))
	r := e.Run("up")
	if r.Code != 0 {
		t.Fatalf("up: exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	out, _ := outputLines(r.Lines())
	for _, name := range []string{"registry", "layout", "ociarchive", "dockerarchive"} {
		if got := strings.Join(out[name], "\n"); got != appOutput {
			t.Errorf("%s printed %q, want %q", name, got, appOutput)
		}
	}
	if got, want := strings.Join(out["args"], "\n"), "entry from-manifest GREETING=from-manifest pwd=/home/app id=0:0"; got != want {
		t.Errorf("args printed %q, want %q", got, want)
	}
	// A user's name is looked up in the rootfs's own /etc/passwd too.
	if got, want := strings.Join(out["named"], "\n"), "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)"; got != want {
		t.Errorf("named printed %q, want %q", got, want)
	}
	if got, want := out["shell"], []string{"hello from layer 3", "removed-gone", "c.txt", "app", "wrote"}; !slices.Equal(got, want) {
		t.Errorf("shell printed %q, want %q", got, want)
	}
	// One image, four sources: its three layers are in the store once.
	layers, err := os.ReadDir(filepath.Join(e.DataDir, "images", "layers"))
	if err != nil || len(layers) != 3 {
		t.Errorf("the store holds %d layers (%v), want 3", len(layers), err)
	}
	e.DownLeavingNothing()
}

// TestImageConcurrentUps pulls one image for two stacks at once: the
// registry serves each layer once, and both run.
func TestImageConcurrentUps(t *testing.T) {
	e := newEnv(t)
	reg := e.registry()
	app := imagetest.App(t)
	reg.Push(t, "app", app)
	dirs := []string{filepath.Join(e.Dir, "one"), filepath.Join(e.Dir, "two")}
	for _, dir := range dirs {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		manifest := fmt.Sprintf("containers:\n  app:\n    image: %s\n    entrypoint: [sleep, \"1000\"]\n", reg.Ref("app"))
		if err := os.WriteFile(filepath.Join(dir, "stack.yaml"), []byte(manifest), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for _, dir := range dirs {
		wg.Go(func() {
			if r := e.RunIn(dir, "up", "-d"); r.Code != 0 {
				t.Errorf("up -d in %s: exit %d: %s", dir, r.Code, r.Stderr)
			}
		})
	}
	wg.Wait()
	layers, err := app.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		d, _ := l.Digest()
		if n := reg.BlobGets(d); n != 1 {
			t.Errorf("layer %s fetched %d times by two ups at once, want 1", d, n)
		}
	}
	for _, dir := range dirs {
		if r := e.RunIn(dir, "down"); r.Code != 0 {
			t.Errorf("down in %s: %s", dir, r.Stderr)
		}
	}
	e.AssertNothingLeft()
}

// TestImageErrors: an image that cannot be had fails up with exit 1,
// naming the container, the reference and the registry's reason, and
// nothing is started.
func TestImageErrors(t *testing.T) {
	e := newEnv(t)
	reg := e.registry()
	reg.Push(t, "foreign", imagetest.ForPlatform(t, imagetest.Other(t), imagetest.OtherArch()))
	refused := refusedAddr(t)
	// The repository private/ asks for credentials nobody has.
	reg.Hook(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, "/private/") {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
		return true
	})
	for _, tc := range []struct{ ref, want string }{
		{reg.Ref("missing:v1"), "NAME_UNKNOWN"},
		{reg.Ref("private/app"), "UNAUTHORIZED"},
		{refused + "/app", "connection refused"},
		{reg.Ref("foreign"), "platform"},
	} {
		e.manifest(fmt.Sprintf("containers:\n  fine:\n    rootfs: {{rootfs}}\n    command: [sleep, \"1000\"]\n  web:\n    image: %s\n", tc.ref))
		r := e.Run("up", "-d")
		if r.Code != 1 || !strings.Contains(r.Stderr, `container "web"`) || !strings.Contains(r.Stderr, tc.ref) || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("up with image %s: exit %d, stderr %q; want 1 naming the container, the image and %q", tc.ref, r.Code, r.Stderr, tc.want)
		}
		e.AssertNothingLeft()
	}
	e.manifest("containers:\n  web:\n    image: Busybox\n")
	if r := e.Run("up", "-d"); r.Code != 2 || !strings.Contains(r.Stderr, "stack.yaml:3:12: containers.web.image:") {
		t.Errorf("up with a malformed reference: exit %d, stderr %q; want 2 and a located error", r.Code, r.Stderr)
	}
}

// TestImagePullImagesPrune: pull fetches without starting, images lists
// the store with the stacks using each image, and prune keeps what a
// running stack uses.
func TestImagePullImagesPrune(t *testing.T) {
	e := newEnv(t)
	reg := e.registry()
	reg.Push(t, "app", imagetest.App(t))
	reg.Push(t, "other", imagetest.Other(t))
	e.manifest(fmt.Sprintf("name: both\ncontainers:\n  app:\n    image: %s\n  other:\n    image: %s\n", reg.Ref("app"), reg.Ref("other")))
	r := e.MustRun("pull")
	if lines := r.Lines(); len(lines) != 2 || !strings.HasPrefix(lines[0], reg.Ref("app:latest")+": ") || !strings.HasPrefix(lines[1], reg.Ref("other:latest")+": ") {
		t.Errorf("pull printed %q, want a line per image", r.Stdout)
	}
	if rows := e.images(); len(rows) != 2 || len(rows[0].Stacks) != 0 {
		t.Errorf("images after pull: %+v", rows)
	}

	run := filepath.Join(e.Dir, "run")
	if err := os.Mkdir(run, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := fmt.Sprintf("name: running\ncontainers:\n  app:\n    image: %s\n    entrypoint: [sleep, \"1000\"]\n", reg.Ref("app"))
	if err := os.WriteFile(filepath.Join(run, "stack.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e.RunIn(run, "up", "-d"); r.Code != 0 {
		t.Fatalf("up -d: %s", r.Stderr)
	}
	// The image's HEALTHCHECK is the container's.
	if row := e.PS("-p", "running")["app"]; row.State != "running" || row.Health == "" {
		t.Errorf("ps: %+v, want app running with the image's health check", row)
	}
	r = e.MustRun("prune")
	if !strings.Contains(r.Stdout, "removed "+reg.Ref("other:latest")+"\n") || strings.Contains(r.Stdout, reg.Ref("app:latest")) {
		t.Errorf("prune with app running printed %q, want other removed and app kept", r.Stdout)
	}
	rows := e.images()
	if len(rows) != 1 || rows[0].Reference != reg.Ref("app:latest") || !slices.Equal(rows[0].Stacks, []string{"running"}) {
		t.Errorf("images after prune: %+v, want app used by running", rows)
	}
	// The running container's layers are still there to use.
	if r := e.RunIn(run, "exec", "-T", "app", "cat", "/app/hello.txt"); r.Code != 0 || r.Stdout != "hello from layer 3\n" {
		t.Errorf("exec after prune: exit %d, %q %q", r.Code, r.Stdout, r.Stderr)
	}
	if r := e.RunIn(run, "down"); r.Code != 0 {
		t.Fatalf("down: %s", r.Stderr)
	}
	e.MustRun("prune")
	if rows := e.images(); len(rows) != 0 {
		t.Errorf("images after down and prune: %+v, want none", rows)
	}
	for _, d := range []string{"layers", "blobs/sha256", "refs", "tmp"} {
		if entries, _ := os.ReadDir(filepath.Join(e.DataDir, "images", d)); len(entries) != 0 {
			t.Errorf("images/%s holds %d entries after prune", d, len(entries))
		}
	}

	e.manifest(fmt.Sprintf("containers:\n  web:\n    image: %s\n", reg.Ref("nope")))
	if r := e.Run("pull"); r.Code != 1 || !strings.Contains(r.Stderr, `container "web": image `+reg.Ref("nope:latest")) {
		t.Errorf("pull of a missing image: exit %d, stderr %q", r.Code, r.Stderr)
	}
	e.AssertNothingLeft()
}

type imageRow struct {
	Reference string   `json:"reference"`
	ID        string   `json:"id"`
	Size      int64    `json:"size"`
	Stacks    []string `json:"stacks"`
}

func (e *env) images() []imageRow {
	e.t.Helper()
	var rows []imageRow
	if err := json.Unmarshal([]byte(e.MustRun("images", "--format", "json").Stdout), &rows); err != nil {
		e.t.Fatal(err)
	}
	return rows
}

// refusedAddr is an address on 127.0.0.1 where nothing listens.
func refusedAddr(t *testing.T) string {
	t.Helper()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer closed.Close()
	return closed.Addr().String()
}

// registry is a registry reachable from the stacks of e: on 127.0.0.1 of
// e's own network namespace.
func (e *env) registry() *imagetest.Registry {
	e.t.Helper()
	return imagetest.NewRegistryIn(e.t, fmt.Sprintf("/proc/%d/ns/net", e.NetnsPID()))
}
