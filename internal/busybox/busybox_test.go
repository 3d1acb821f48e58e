package busybox

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// treeHash is the tree's Digest, in hex.
func treeHash(t *testing.T, dir string) string {
	t.Helper()
	sum, err := Digest(dir)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sum)
}

func TestInstallIsReproducible(t *testing.T) {
	if _, err := Path(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	if err := Install(a); err != nil {
		t.Fatal(err)
	}
	if err := Install(b); err != nil {
		t.Fatal(err)
	}
	if ha, hb := treeHash(t, a), treeHash(t, b); ha != hb {
		t.Fatalf("two installs differ: %s vs %s", ha, hb)
	}
	for _, applet := range []string{"sh", "sleep", "echo", "dd", "cat"} {
		if target, err := os.Readlink(filepath.Join(a, "bin", applet)); err != nil || target != "busybox" {
			t.Errorf("/bin/%s: link %q, %v; want busybox", applet, target, err)
		}
	}
}
