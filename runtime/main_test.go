package runtime

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stack-containers/stack/internal/testenv"
)

func TestMain(m *testing.M) {
	// The test binary is the containers' init, as the stack binary is.
	MaybeInit()
	code := m.Run()
	testenv.Cleanup()
	os.Exit(code)
}

// newSpec is a container of the default namespaces running args on rootfs,
// with a layer and a cache of the test's own.
func newSpec(t *testing.T, rootfs string, args ...string) *Spec {
	t.Helper()
	dir := t.TempDir()
	return &Spec{
		Name:       "test",
		Rootfs:     rootfs,
		Args:       args,
		Namespaces: []string{"pid", "mount", "uts", "ipc", "net"},
		LayerDir:   filepath.Join(dir, "layer"),
		CacheDir:   filepath.Join(dir, "cache"),
	}
}

// run runs the container to its end and cleans it up, checking that its
// layer is gone; it returns what it wrote on stdout and stderr.
func run(t *testing.T, spec *Spec) (string, ExitStatus) {
	t.Helper()
	var out bytes.Buffer
	spec.Stdout, spec.Stderr = &out, &out
	c, err := Start(spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	st, err := c.Wait()
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if err := c.Cleanup(); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if _, err := os.Stat(spec.LayerDir); !os.IsNotExist(err) {
		t.Errorf("layer dir %s still there after Cleanup (stat: %v)", spec.LayerDir, err)
	}
	return out.String(), st
}
