package stacktest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// The binary is built at most once per test binary, by the first test that
// needs it, and shared read-only by all of them.
var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// Binary returns the path of the stack binary built from cmd/stack, building
// it on first use; a failed build fails the test.
func Binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() { binPath, binErr = build() })
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func build() (string, error) {
	dir, err := os.MkdirTemp("", "stack-bin-")
	if err != nil {
		return "", fmt.Errorf("stacktest: build stack: %w", err)
	}
	binDir = dir
	// go test may run with a PATH that lacks the go tool (sudo, say); the
	// toolchain that built this test binary is the next best.
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "stack")
	cmd := exec.Command(goTool, "build", "-trimpath", "-o", bin, "github.com/stack-containers/stack/cmd/stack")
	// Built as `make build` builds it (static, trimmed paths), so that the
	// tests run what users run, but for the version stamp.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("stacktest: go build cmd/stack: %w\n%s", err, out)
	}
	return bin, nil
}

// Cleanup removes the built binary; call it from TestMain after m.Run.
func Cleanup() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}
