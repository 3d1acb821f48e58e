package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLoadRefusesWhatIsNotAManifestFile gives Load a device that never
// ends, a FIFO that no one writes and a file above the size cap: each is
// refused at once with what it is, where reading it would grow memory
// without bound, block forever or cost many times its size.
func TestLoadRefusesWhatIsNotAManifestFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	// A valid start, then a comment that takes it past the cap.
	text := "containers:\n  a:\n    rootfs: .\n    command: [x]\n#" + strings.Repeat("x", maxManifestSize) + "\n"
	if err := os.WriteFile(big, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		{"/dev/zero", "not a regular file (a character device)"},
		{fifo, "not a regular file (a FIFO)"},
		{dir, "not a regular file (a directory)"},
		{big, "a manifest may have at most 4194304 (4 MiB)"},
	} {
		done := make(chan error, 1)
		go func() {
			_, err := Load(c.path)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Load(%s) = %v, want an error saying %q", c.path, err, c.want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("Load(%s) has not returned: it reads what never ends", c.path)
		}
	}
	// The .env beside a manifest is read the same way.
	app := t.TempDir()
	if err := os.WriteFile(filepath.Join(app, "stack.yaml"), []byte("containers:\n  a:\n    rootfs: .\n    command: [x]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(app, ".env"), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Load(filepath.Join(app, "stack.yaml"))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "read .env") || !strings.Contains(err.Error(), "a FIFO") {
			t.Errorf("Load with a FIFO as .env = %v, want it refused", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Load has not returned: it waits on a FIFO .env")
	}
}
