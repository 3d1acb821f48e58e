package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"sigs.k8s.io/yaml"

	"github.com/stack-containers/stack/internal/testenv"
)

// The tests here send `stack export kubernetes`'s output to a real
// kube-apiserver (with etcd, no nodes): hack/apiserver.sh builds and starts
// one on 127.0.0.1 and hands its kubeconfig over in STACK_TEST_KUBECONFIG
// (`make test` does). Plain net/http and the API's JSON is all a
// server-side apply needs; client-go would add its whole dependency tree
// for two requests.

// cluster is an API server the tests talk to.
type cluster struct {
	server string
	token  string
	client *http.Client
}

// kubeconfig is the part of a kubeconfig file hack/apiserver.sh writes
// that the tests read.
type kubeconfig struct {
	Clusters []struct {
		Cluster struct {
			Server               string `json:"server"`
			CertificateAuthority string `json:"certificate-authority"`
		} `json:"cluster"`
	} `json:"clusters"`
	Users []struct {
		User struct {
			Token string `json:"token"`
		} `json:"user"`
	} `json:"users"`
}

// requireCluster returns the API server of STACK_TEST_KUBECONFIG, and
// skips the test (fails it in CI) without one.
func requireCluster(t *testing.T) *cluster {
	t.Helper()
	path := os.Getenv("STACK_TEST_KUBECONFIG")
	if path == "" {
		testenv.SkipOrFail(t, "no API server: set STACK_TEST_KUBECONFIG, as `hack/apiserver.sh run go test ./e2e` and make test do")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kc kubeconfig
	if err := yaml.Unmarshal(data, &kc); err != nil || len(kc.Clusters) == 0 || len(kc.Users) == 0 {
		t.Fatalf("kubeconfig %s: %v (want a cluster and a user)", path, err)
	}
	ca, err := os.ReadFile(kc.Clusters[0].Cluster.CertificateAuthority)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("no certificate in %s", kc.Clusters[0].Cluster.CertificateAuthority)
	}
	u, err := url.Parse(kc.Clusters[0].Cluster.Server)
	if err != nil || !loopbackHost(u.Hostname()) {
		t.Fatalf("API server %q: the tests talk only to one on 127.0.0.1 (%v)", kc.Clusters[0].Cluster.Server, err)
	}
	return &cluster{
		server: kc.Clusters[0].Cluster.Server,
		token:  kc.Users[0].User.Token,
		client: &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
	}
}

func loopbackHost(h string) bool { return h == "127.0.0.1" || h == "localhost" || h == "::1" }

// do sends one request and returns the body of a 2xx answer, or fails
// with the server's message.
func (c *cluster) do(t *testing.T, method, path, contentType string, body []byte) []byte {
	t.Helper()
	req, err := http.NewRequest(method, c.server+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s\n%s\nsent:\n%s", method, path, resp.Status, out, body)
	}
	// A warning is the server saying it changed or will ignore something:
	// the export is meant to be taken as it is.
	for _, w := range resp.Header.Values("Warning") {
		t.Errorf("%s %s: the API server warns: %s", method, path, w)
	}
	return out
}

// namespace creates a namespace of a unique name, so that runs against a
// long-lived server do not meet each other's objects.
func (c *cluster) namespace(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	ns := prefix + "-" + hex.EncodeToString(b)
	body, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}})
	c.do(t, "POST", "/api/v1/namespaces", "application/json", body)
	return ns
}

// resources maps a kind to its API path and plural.
var resources = map[string]string{
	"Deployment":            "/apis/apps/v1/namespaces/%s/deployments/%s",
	"Job":                   "/apis/batch/v1/namespaces/%s/jobs/%s",
	"Pod":                   "/api/v1/namespaces/%s/pods/%s",
	"Service":               "/api/v1/namespaces/%s/services/%s",
	"PersistentVolumeClaim": "/api/v1/namespaces/%s/persistentvolumeclaims/%s",
	"NetworkPolicy":         "/apis/networking.k8s.io/v1/namespaces/%s/networkpolicies/%s",
}

// object is one document of an export.
type object struct {
	kind, name string
	yaml       []byte
	tree       map[string]any
}

// documents splits a YAML stream into its objects.
func documents(t *testing.T, stream []byte) []object {
	t.Helper()
	var objs []object
	for _, doc := range regexp.MustCompile(`(?m)^---\n`).Split(string(stream), -1) {
		var tree map[string]any
		if err := yaml.Unmarshal([]byte(doc), &tree); err != nil {
			t.Fatalf("document %q: %v", doc, err)
		}
		if tree == nil {
			continue // the header, comments only
		}
		meta, _ := tree["metadata"].(map[string]any)
		kind, _ := tree["kind"].(string)
		objName, _ := meta["name"].(string)
		if resources[kind] == "" || objName == "" {
			t.Fatalf("document without a known kind and a name:\n%s", doc)
		}
		objs = append(objs, object{kind: kind, name: objName, yaml: []byte(doc), tree: tree})
	}
	return objs
}

// apply sends every object with server-side apply and strict field
// validation: first as a dry run (dryRun=All), then for real; then reads
// each back and checks that every field sent is there, unchanged (a field
// the server dropped, as it does with those behind a feature gate, would
// be missing).
func (c *cluster) apply(t *testing.T, ns string, objs []object) {
	t.Helper()
	for _, dry := range []bool{true, false} {
		for _, o := range objs {
			q := url.Values{"fieldManager": {"stack-e2e"}, "fieldValidation": {"Strict"}, "force": {"true"}}
			if dry {
				q.Set("dryRun", "All")
			}
			path := fmt.Sprintf(resources[o.kind], ns, o.name) + "?" + q.Encode()
			c.do(t, "PATCH", path, "application/apply-patch+yaml", o.yaml)
		}
	}
	for _, o := range objs {
		var back map[string]any
		if err := json.Unmarshal(c.do(t, "GET", fmt.Sprintf(resources[o.kind], ns, o.name), "", nil), &back); err != nil {
			t.Fatal(err)
		}
		for _, diff := range subset("", o.tree, back) {
			t.Errorf("%s %s read back: %s", o.kind, o.name, diff)
		}
	}
}

// subset lists where want has a value that got lacks or holds otherwise;
// got may have more (the server's defaults).
func subset(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: sent %v, read %v", path, want, got)}
		}
		var diffs []string
		for k, v := range w {
			diffs = append(diffs, subset(path+"."+k, v, g[k])...)
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: sent %v, read %v", path, want, got)}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, subset(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return diffs
	default:
		// YAML and JSON numbers decode alike (float64) through sigs.k8s.io/yaml.
		if fmt.Sprint(want) != fmt.Sprint(got) {
			return []string{fmt.Sprintf("%s: sent %v, read %v", path, want, got)}
		}
		return nil
	}
}

// TestKubernetesExamples exports every example with its rootfs pushed to a
// registry on 127.0.0.1, applies the objects to a real API server, and
// checks that every workload names the pushed image by its digest.
func TestKubernetesExamples(t *testing.T) {
	c := requireCluster(t)
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	registryRef := strings.TrimPrefix(reg.URL, "http://") + "/stack"
	for _, ex := range exampleNames(t) {
		t.Run(ex, func(t *testing.T) {
			needs(t, ex)
			manifest := example(t, ex)
			ns := c.namespace(t, ex)
			out := filepath.Join(t.TempDir(), "k8s")
			r := stack(t, filepath.Dir(manifest), "export", "kubernetes", "--image-registry", registryRef, "--namespace", ns, "-o", out)
			r.expect(t, 0, "stderr", `^stack: pushed \S+ as `+regexp.QuoteMeta(registryRef)+`/`+ex+`/`+ex+`@sha256:[0-9a-f]{64}$`)
			pushed := regexp.MustCompile(`(?m)^stack: pushed \S+ as (\S+)$`).FindAllStringSubmatch(r.stderr, -1)
			files, err := filepath.Glob(filepath.Join(out, "*.yaml"))
			if err != nil || len(files) == 0 {
				t.Fatalf("no files in %s (%v)", out, err)
			}
			var objs []object
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				objs = append(objs, documents(t, data)...)
			}
			images := map[string]bool{}
			for _, o := range objs {
				if got := o.tree["metadata"].(map[string]any)["namespace"]; got != ns {
					t.Errorf("%s %s: namespace %v, want %s", o.kind, o.name, got, ns)
				}
				for _, img := range imagesOf(o.tree) {
					images[img] = true
				}
			}
			var want []string
			for _, m := range pushed {
				want = append(want, m[1])
				// The registry holds what the Pods name.
				ref, err := name.NewDigest(m[1])
				if err != nil {
					t.Fatal(err)
				}
				if _, err := remote.Head(ref); err != nil {
					t.Errorf("pushed image %s: %v", ref, err)
				}
			}
			slices.Sort(want)
			if got := slices.Sorted(maps.Keys(images)); !slices.Equal(got, want) {
				t.Errorf("the objects name images %v, the export pushed %v", got, want)
			}
			c.apply(t, ns, objs)
		})
	}
}

// TestKubernetesGolden applies the export package's golden files, one for
// each mapping, so that the API server checks every mapping, not only
// those the examples use. Their image does not exist; nothing pulls it.
func TestKubernetesGolden(t *testing.T) {
	c := requireCluster(t)
	files, _ := filepath.Glob("../kube/testdata/valid/*.golden")
	if len(files) == 0 {
		t.Fatal("no golden files in ../kube/testdata/valid")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			data = bytes.ReplaceAll(data, []byte("$DIR"), []byte("/srv/stack"))
			ns := c.namespace(t, strings.TrimSuffix(filepath.Base(f), ".golden"))
			c.apply(t, ns, documents(t, data))
		})
	}
}

// imagesOf lists the images a workload's containers name.
func imagesOf(tree map[string]any) []string {
	spec, _ := tree["spec"].(map[string]any)
	if tmpl, ok := spec["template"].(map[string]any); ok {
		spec, _ = tmpl["spec"].(map[string]any)
	}
	var out []string
	containers, _ := spec["containers"].([]any)
	for _, c := range containers {
		if img, ok := c.(map[string]any)["image"].(string); ok {
			out = append(out, img)
		}
	}
	return out
}

// TestExportKubernetesRefusals: what cannot be exported is refused before
// anything is pushed or written, located, with exit status 2.
func TestExportKubernetesRefusals(t *testing.T) {
	manifest := example(t, "web")
	dir := filepath.Dir(manifest)
	out := filepath.Join(t.TempDir(), "k8s")
	r := stack(t, dir, "export", "kubernetes", "-o", out)
	r.expect(t, 2,
		"stderr", `^stack: error: cannot export to Kubernetes \(3 problems\):$`,
		"stderr", `^stack\.yaml:\d+:\d+: containers\.server\.rootfs: .*give --image-registry$`,
		"stderr", `^hint: give --image-registry REF`)
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("%s was made by a refused export (%v)", out, err)
	}
	writeFiles(t, dir, map[string]string{"bad.yaml": "containers:\n  a_b:\n    rootfs: ../build/web\n    command: /bin/worker\n  a-b:\n    rootfs: ../build/web\n    command: /bin/worker\n"})
	// The registry is never reached: the names are refused first.
	r = stack(t, dir, "-f", "bad.yaml", "export", "kubernetes", "--image-registry", "127.0.0.1:1/stack")
	r.expect(t, 2, "stderr", `^bad\.yaml:2:3: containers\.a_b: maps to the Kubernetes name "a-b", which container "a-b" has too`)
	for _, args := range [][]string{
		{"export"},
		{"export", "compose"},
		{"export", "kubernetes", "--namespace", "Not_A_Label"},
		{"export", "kubernetes", "--image-registry", "UPPER CASE/x"},
	} {
		stack(t, dir, args...).expect(t, 2, "stderr", `^stack: error: `)
	}
}

// TestExportKubernetesImage: an image from a registry is named by the
// digest stack pulled once it did, and by its tag (with a warning) before;
// its HEALTHCHECK becomes the probe once stack knows it.
func TestExportKubernetesImage(t *testing.T) {
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	// A HEALTHCHECK, which up runs and Kubernetes ignores: the export
	// makes it the probe once it knows it.
	if img, err = mutate.Config(img, v1.Config{Healthcheck: &v1.HealthConfig{Test: []string{"CMD", "/bin/check"}, Interval: 7 * time.Second}}); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(host + "/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"stack.yaml": "name: app\ncontainers:\n  app:\n    image: " + tag.String() + "\n    command: [/bin/app]\n"})
	in := invocation{dir: dir, env: []string{"STACK_DATA_DIR=" + filepath.Join(dir, "data")}}
	in.run(t, "export", "kubernetes").expect(t, 0,
		"stdout", `^\s+(- )?image: `+regexp.QuoteMeta(tag.String())+`$`,
		"stderr", `^stack: warning: containers\.app\.image: .* is named by its tag, which can move`,
		"!stdout", `readinessProbe`)
	if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
		t.Errorf("export made STACK_DATA_DIR (%v)", err)
	}
	in.run(t, "pull").expect(t, 0)
	in.run(t, "export", "kubernetes").expect(t, 0,
		"stdout", `^\s+(- )?image: `+regexp.QuoteMeta(host+"/team/app@"+digest.String())+`$`,
		"!stderr", `named by its tag`,
		"stdout", `^\s+readinessProbe:\n\s+exec:\n\s+command:\n\s+- /bin/check\n(.*\n)*\s+periodSeconds: 7$`)
}
