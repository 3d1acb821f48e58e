package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// FuzzLoad feeds the loader arbitrary bytes, seeded with every manifest of
// testdata, as if they were testdata/valid/fuzz.yaml. The loader must never
// panic and must return a stack or located problems, never both. A stack
// it returns must hold its invariants, be accepted by schema.json (the
// schema may refuse less than the loader, never more) and print into YAML
// that loads back into the same stack.
func FuzzLoad(f *testing.F) {
	for _, dir := range []string{"valid", "invalid"} {
		for _, path := range manifests(f, dir) {
			data, err := os.ReadFile(path)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	abs, err := filepath.Abs("testdata/valid/fuzz.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, _, err := parse("fuzz.yaml", abs, data, variables{}, "/home/fuzz")
		if err != nil {
			var me *Error
			if st != nil || !errors.As(err, &me) || len(me.Problems) == 0 {
				t.Fatalf("parse = %v, %v; want no stack and an *Error with problems", st, err)
			}
			for _, p := range me.Problems {
				if p.File != "fuzz.yaml" || p.Msg == "" || p.Line < 0 || p.Col < 0 {
					t.Fatalf("malformed problem %#v", p)
				}
			}
			return
		}
		if st == nil {
			t.Fatal("parse returned neither a stack nor an error")
		}
		checkInvariants(t, st)
		if ok, err := schemaAccepts(t, data); !ok {
			t.Fatalf("the loader accepts what the schema refuses: %v", err)
		}
		out := printed(t, st)
		again, _, err := parse("fuzz.yaml", abs, out, variables{}, "/home/fuzz")
		if err != nil {
			t.Fatalf("the printed stack does not load:\n%s\n%v", out, err)
		}
		if !reflect.DeepEqual(again, st) {
			t.Fatalf("printed and loaded again, the stack differs:\n%s\n%s", out, printed(t, again))
		}
	})
}

// checkInvariants checks what every loaded stack promises its users.
func checkInvariants(t *testing.T, st *Stack) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("invariant broken: "+format, args...)
	}
	if ValidateName(st.Name) != nil || len(st.Containers) == 0 || !filepath.IsAbs(st.File) {
		fail("stack name %q, %d containers, file %q", st.Name, len(st.Containers), st.File)
	}
	for name, c := range st.Containers {
		switch {
		case c.Name != name || ValidateName(name) != nil:
			fail("container %q named %q", name, c.Name)
		case (c.Rootfs == "") == (c.Image == ""):
			fail("%s: rootfs %q, image %q: want exactly one", name, c.Rootfs, c.Image)
		case c.Rootfs != "" && !filepath.IsAbs(c.Rootfs):
			fail("%s: rootfs %q", name, c.Rootfs)
		case c.Rootfs != "" && (len(c.Command) == 0 || c.Command[0] == ""):
			fail("%s: command %q", name, c.Command)
		case c.Image != "" && !slices.Contains([]PullPolicy{PullMissing, PullAlways, PullNever}, c.PullPolicy):
			fail("%s: pull_policy %q", name, c.PullPolicy)
		case !strings.HasPrefix(c.Workdir, "/") && !(c.Image != "" && c.Workdir == ""):
			fail("%s: workdir %q", name, c.Workdir)
		case !slices.Contains(c.Namespaces, NamespaceMount):
			fail("%s: namespaces %v lack mount", name, c.Namespaces)
		case !slices.IsSortedFunc(c.Namespaces, func(a, b Namespace) int {
			return slices.Index(canonicalNamespaces, a) - slices.Index(canonicalNamespaces, b)
		}) || len(slices.Compact(slices.Clone(c.Namespaces))) != len(c.Namespaces):
			fail("%s: namespaces %v not canonical", name, c.Namespaces)
		case (c.Hostname != "") != slices.Contains(c.Namespaces, NamespaceUTS):
			fail("%s: hostname %q with namespaces %v", name, c.Hostname, c.Namespaces)
		case c.Memory < 0 || c.Pids < 0 || (c.CPUs != 0 && !(c.CPUs >= minCPUs)):
			fail("%s: limits memory %d pids %d cpus %v", name, c.Memory, c.Pids, c.CPUs)
		case !slices.Contains(policies, c.Restart.Policy) || c.Restart.Backoff < 0 || c.Restart.MaxBackoff <= 0 || c.Restart.MaxBackoff < c.Restart.Backoff || c.Restart.MaxRetries < 0:
			fail("%s: restart %+v", name, c.Restart)
		case c.StopSignal < 1 || c.StopSignal > maxSignal || c.StopTimeout < 0:
			fail("%s: stop %v after %v", name, c.StopSignal, c.StopTimeout)
		case !slices.IsSorted(c.DependsOn):
			fail("%s: depends_on %v not sorted", name, c.DependsOn)
		}
		for ns, target := range c.Join {
			if !slices.Contains(joinable, ns) || slices.Contains(c.Namespaces, ns) || target == name || st.Containers[target] == nil {
				fail("%s: join %s of %q with namespaces %v", name, ns, target, c.Namespaces)
			}
		}
		for _, dep := range c.DependsOn {
			if dep == name || st.Containers[dep] == nil {
				fail("%s: depends on %q", name, dep)
			}
		}
		for _, m := range c.Mounts {
			bind := filepath.IsAbs(m.Source) && m.Volume == ""
			volume := m.Source == "" && slices.Contains(st.Volumes, m.Volume)
			if bind == volume || !strings.HasPrefix(m.Target, "/") || m.Target == "/" {
				fail("%s: mount %+v", name, m)
			}
		}
	}
}
