package kube

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/stack-containers/stack/manifest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// testImage stands for the digest a packed rootfs was pushed as.
const testImage = "registry.example/stack/rootfs@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// load copies a test manifest into a directory of its own, beside the
// rootfs, data directory, file and seccomp profile its containers name,
// and loads it.
func load(t *testing.T, file string) (*manifest.Stack, string) {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"rootfs", "data"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{
		"conf.txt":     "x=1\n",
		"profile.json": `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"}]}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "stack.yaml")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := manifest.Load(p)
	if err != nil {
		t.Fatalf("load %s: %v", file, err)
	}
	return st, dir
}

// images stands for what the export command resolves: the rootfs pushed
// as testImage, and every registry image named as written (stack has not
// pulled them); a local layout or archive is left out, as it would be
// without --image-registry.
func images(st *manifest.Stack, dir string) map[string]string {
	m := map[string]string{filepath.Join(dir, "rootfs"): testImage}
	for _, c := range st.Containers {
		if c.Image != "" && !strings.HasPrefix(c.Image, "oci:") {
			m[c.Image] = c.Image
		}
	}
	return m
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./kube -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test ./kube -update and read the diff):\n%s", path, got)
	}
}

// TestGolden converts every manifest under testdata/valid and compares the
// output, then the notes, with its golden file; every object must read
// back, strictly, into the object it was printed from.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/valid/*.yaml")
	if len(files) == 0 {
		t.Fatal("no test manifests")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			st, dir := load(t, file)
			ex, err := Convert(st, Options{Source: "stack.yaml", Images: images(st, dir)})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := ex.Write(&out); err != nil {
				t.Fatal(err)
			}
			for _, n := range ex.Notes {
				out.WriteString("# warning: " + n.String() + "\n")
			}
			got := strings.ReplaceAll(out.String(), dir, "$DIR")
			golden(t, strings.TrimSuffix(file, ".yaml")+".golden", []byte(got))
			roundTrip(t, ex)
		})
	}
}

// roundTrip reads each printed document back into a fresh object of its
// type, refusing unknown fields, and compares it with the original.
func roundTrip(t *testing.T, ex *Export) {
	t.Helper()
	for _, o := range ex.Objects {
		doc, err := document(o)
		if err != nil {
			t.Fatal(err)
		}
		var back runtime.Object
		switch o.Object.(type) {
		case *appsv1.Deployment:
			back = &appsv1.Deployment{}
		case *batchv1.Job:
			back = &batchv1.Job{}
		case *corev1.Pod:
			back = &corev1.Pod{}
		case *corev1.Service:
			back = &corev1.Service{}
		case *corev1.PersistentVolumeClaim:
			back = &corev1.PersistentVolumeClaim{}
		case *networkingv1.NetworkPolicy:
			back = &networkingv1.NetworkPolicy{}
		default:
			t.Fatalf("%s %s: no round trip for %T", o.Kind, o.Name, o.Object)
		}
		if err := yaml.UnmarshalStrict(doc, back); err != nil {
			t.Fatalf("%s %s: read back: %v\n%s", o.Kind, o.Name, err, doc)
		}
		if !equality.Semantic.DeepEqual(o.Object, back) {
			t.Errorf("%s %s: read back differs:\nprinted %#v\nread    %#v", o.Kind, o.Name, o.Object, back)
		}
		if reflect.TypeOf(back) != reflect.TypeOf(o.Object) {
			t.Errorf("%s %s: type %T read back as %T", o.Kind, o.Name, o.Object, back)
		}
	}
}

// TestInvalid converts every manifest under testdata/invalid, which load
// but cannot be exported, and compares the problems with the golden file.
func TestInvalid(t *testing.T) {
	files, _ := filepath.Glob("testdata/invalid/*.yaml")
	if len(files) == 0 {
		t.Fatal("no test manifests")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			st, dir := load(t, file)
			opts := Options{Source: "stack.yaml"}
			// noimage is about the missing image; the others have theirs.
			if filepath.Base(file) != "noimage.yaml" {
				opts.Images = images(st, dir)
			}
			_, err := Convert(st, opts)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Convert: %v, want an *Error", err)
			}
			golden(t, strings.TrimSuffix(file, ".yaml")+".golden", []byte(strings.ReplaceAll(err.Error(), dir, "$DIR")+"\n"))
		})
	}
}

func TestNamespace(t *testing.T) {
	st, dir := load(t, "testdata/valid/join.yaml")
	images := map[string]string{filepath.Join(dir, "rootfs"): testImage}
	if _, err := Convert(st, Options{Namespace: "Bad_NS", Images: images}); err == nil {
		t.Error("Convert took the namespace Bad_NS")
	}
	ex, err := Convert(st, Options{Namespace: "team-a", Images: images})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range ex.Objects {
		if ns := o.Object.(interface{ GetNamespace() string }).GetNamespace(); ns != "team-a" {
			t.Errorf("%s %s: namespace %q, want team-a", o.Kind, o.Name, ns)
		}
	}
}

func TestWriteDir(t *testing.T) {
	st, dir := load(t, "testdata/valid/join.yaml")
	ex, err := Convert(st, Options{Images: map[string]string{filepath.Join(dir, "rootfs"): testImage}})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "k8s")
	files, err := ex.WriteDir(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(ex.Objects) {
		t.Fatalf("%d files for %d objects", len(files), len(ex.Objects))
	}
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := document(ex.Objects[i])
		if !bytes.HasPrefix(data, []byte("# Kubernetes objects")) || !bytes.HasSuffix(data, want) {
			t.Errorf("%s: not the header and the object:\n%s", f, data)
		}
	}
}
