package manifest

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stack-containers/stack/seccomp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// manifests returns the manifests of one testdata directory, by path.
func manifests(t testing.TB, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests in testdata/%s: %v", dir, err)
	}
	return paths
}

// golden compares got with the golden file next to the manifest at path,
// or rewrites it under -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	file := strings.TrimSuffix(path, ".yaml") + ".golden"
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("read golden (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s:\n--- got\n%s--- want\n%s", path, file, got, want)
	}
}

// printed is the normalized YAML of st, as `stack config` prints it.
func printed(t testing.TB, st *Stack) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(st); err != nil {
		t.Fatalf("print %s: %v", st.File, err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// positionless are the manifests whose problem YAML cannot place: there is
// no node to point at.
var positionless = []string{"empty", "only-comments"}

func TestInvalidManifests(t *testing.T) {
	for _, path := range manifests(t, "invalid") {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			st, err := Load(path)
			var me *Error
			if !errors.As(err, &me) {
				t.Fatalf("Load = %v, %v; want an *Error", st, err)
			}
			if st != nil {
				t.Errorf("Load returned a stack along with its error")
			}
			for _, p := range me.Problems {
				if p.File != path {
					t.Errorf("problem names file %q, want %q", p.File, path)
				}
				if p.Line == 0 && !slices.Contains(positionless, name) {
					t.Errorf("problem without a position: %s", p)
				}
			}
			golden(t, path, []byte(err.Error()+"\n"))
		})
	}
}

func TestValidManifests(t *testing.T) {
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range manifests(t, "valid") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			st, err := Load(path)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			out := printed(t, st)
			golden(t, path, bytes.ReplaceAll(out, []byte(testdata), []byte("$TESTDATA")))
			roundTrip(t, st, out)
		})
	}
}

// roundTrip loads the printed form of st from another directory and
// checks that it is the same stack and prints the same.
func roundTrip(t testing.TB, st *Stack, out []byte) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "stack.yaml")
	if err := os.WriteFile(file, out, 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := Load(file)
	if err != nil {
		t.Fatalf("the printed manifest does not load:\n%s\n%v", out, err)
	}
	again.File = st.File
	if !reflect.DeepEqual(again, st) {
		t.Errorf("printed and loaded again, the stack differs:\n%s\n%s", out, printed(t, again))
	}
}

func TestDefaults(t *testing.T) {
	st, err := Load("testdata/valid/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs("testdata/valid/minimal.yaml")
	rootfs, _ := filepath.Abs("testdata/rootfs")
	want := &Stack{
		Name: "valid",
		File: abs,
		Containers: map[string]*Container{"app": {
			Name:           "app",
			Rootfs:         rootfs,
			Command:        []string{"/bin/sh", "-c", "echo hello"},
			Workdir:        "/",
			Hostname:       "app",
			User:           "0:0",
			Namespaces:     []Namespace{NamespacePID, NamespaceMount, NamespaceUTS, NamespaceIPC, NamespaceNet},
			Restart:        RestartPolicy{Policy: RestartNo, Backoff: 100 * time.Millisecond, MaxBackoff: 10 * time.Second},
			StopSignal:     syscall.SIGTERM,
			StopTimeout:    10 * time.Second,
			Network:        NetworkStack,
			Seccomp:        SeccompDefault,
			SeccompProfile: seccomp.Default(),
		}},
	}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("Load = %+v\nwant %+v", st.Containers["app"], want.Containers["app"])
	}
}

func TestJoinedNamespacesLeaveTheDefaults(t *testing.T) {
	st, err := Load("testdata/valid/join.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]struct {
		ns       []Namespace
		hostname string
		join     map[Namespace]string
	}{
		"db":      {[]Namespace{"pid", "mount", "uts", "ipc", "net"}, "db", nil},
		"sidecar": {[]Namespace{"pid", "mount", "ipc"}, "", map[Namespace]string{"net": "db", "uts": "db"}},
		"worker":  {[]Namespace{"pid", "mount"}, "", map[Namespace]string{"ipc": "db"}},
	} {
		c := st.Containers[name]
		if !slices.Equal(c.Namespaces, want.ns) || c.Hostname != want.hostname || !reflect.DeepEqual(c.Join, want.join) {
			t.Errorf("%s: namespaces %v hostname %q join %v; want %v %q %v", name, c.Namespaces, c.Hostname, c.Join, want.ns, want.hostname, want.join)
		}
	}
}

func TestShortForms(t *testing.T) {
	st, err := Load("testdata/valid/short-forms.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := st.Containers["a"], st.Containers["b"], st.Containers["c"]
	checks := []struct {
		what      string
		got, want any
	}{
		{"command string", a.Command, []string{"sh", "-c", `echo "$HOME" is not expanded`, `"quoted"`, "two words", "back slash"}},
		{"env list", a.Env, map[string]string{"PATH": "/bin", "EMPTY": "", "WITH_EQUALS": "a=b"}},
		{"numeric user", [2]uint32{a.UID, a.GID}, [2]uint32{1000, 0}},
		{"fractional size", a.Memory, int64(1536 << 20)},
		{"MiB", b.Memory, int64(64 << 20)},
		{"plain bytes", c.Memory, int64(2000000)},
		{"float pids", b.Pids, int64(1000)},
		{"signal number", a.StopSignal, syscall.SIGKILL},
		{"unnamed signal", b.StopSignal, syscall.Signal(40)},
		{"restart string", a.Restart, RestartPolicy{Policy: RestartOnFailure, Backoff: 100 * time.Millisecond, MaxBackoff: 10 * time.Second}},
		{"backoff above the default cap", b.Restart, RestartPolicy{Policy: RestartOnFailure, Backoff: 20 * time.Second, MaxBackoff: 20 * time.Second}},
		{"block string command", c.Command, []string{"/bin/sh", "-c", "while true; do\nsleep 1; done"}},
		{"integer cpus", c.CPUs, 2.0},
		{"name", st.Name, "short_forms"},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s: got %#v, want %#v", ch.what, ch.got, ch.want)
		}
	}
}

func TestMergeKeys(t *testing.T) {
	st, err := Load("testdata/valid/anchors.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cp, layered := st.Containers["copy"], st.Containers["layered"]
	if !slices.Equal(cp.Command, []string{"sleep", "2000"}) || cp.Env["LEVEL"] != "info" || cp.Restart.Policy != RestartAlways {
		t.Errorf("copy = %+v; want its own command over the merged one, and the merged env and restart", cp)
	}
	if layered.StopTimeout != 3*time.Second || layered.Restart.MaxRetries != 5 || !slices.Equal(layered.Command, []string{"sleep", "1000"}) {
		t.Errorf("layered = %+v; want stop_timeout from the first merged mapping and the rest from base", layered)
	}
}

// TestCycleReportIsStable loads a manifest with cycles many times: Go's
// map order changes from run to run, the message must not.
func TestCycleReportIsStable(t *testing.T) {
	var first string
	for range 30 {
		_, err := Load("testdata/invalid/cycle-depends-on.yaml")
		if err == nil {
			t.Fatal("cycle not reported")
		}
		if first == "" {
			first = err.Error()
		} else if err.Error() != first {
			t.Fatalf("the report changed between runs:\n%s\n---\n%s", first, err)
		}
	}
	for _, want := range []string{"a -> b -> c -> a", "d -> d2 -> d"} {
		if !strings.Contains(first, want) {
			t.Errorf("report %q does not name the cycle %s", first, want)
		}
	}
}

func TestLoadUnreadable(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"))
	var me *Error
	if !errors.Is(err, os.ErrNotExist) || errors.As(err, &me) {
		t.Errorf("Load(missing) = %v; want a wrapped not-exist error, not a manifest error", err)
	}
}
