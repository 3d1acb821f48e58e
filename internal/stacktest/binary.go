package stacktest

import (
	"encoding/json"
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
	// Built as `make build` builds it (static, trimmed paths, with
	// cmd/stack-init embedded as the containers' init, cmd/stack-export
	// as the export and cmd/stack-pull as the pull), so that the tests
	// run what users run, but for the version stamp.
	initBin := filepath.Join(dir, "stack-init")
	if err := goBuild(goTool, "-o", initBin, "github.com/stack-containers/stack/cmd/stack-init"); err != nil {
		return "", err
	}
	exportBin := filepath.Join(dir, "stack-export")
	if err := goBuild(goTool, "-o", exportBin, "github.com/stack-containers/stack/cmd/stack-export"); err != nil {
		return "", err
	}
	pullBin := filepath.Join(dir, "stack-pull")
	if err := goBuild(goTool, "-o", pullBin, "github.com/stack-containers/stack/cmd/stack-pull"); err != nil {
		return "", err
	}
	// This file is internal/stacktest/binary.go of the source tree.
	_, self, _, _ := runtime.Caller(0)
	cmdStack := filepath.Join(filepath.Dir(self), "..", "..", "cmd", "stack")
	overlay, err := json.Marshal(map[string]map[string]string{"Replace": {
		filepath.Join(cmdStack, "stack-init.elf"):   initBin,
		filepath.Join(cmdStack, "stack-export.elf"): exportBin,
		filepath.Join(cmdStack, "stack-pull.elf"):   pullBin,
	}})
	if err != nil {
		return "", err
	}
	overlayFile := filepath.Join(dir, "embed-overlay.json")
	if err := os.WriteFile(overlayFile, overlay, 0o644); err != nil {
		return "", fmt.Errorf("stacktest: %w", err)
	}
	bin := filepath.Join(dir, "stack")
	if err := goBuild(goTool, "-tags", "stackinit", "-overlay", overlayFile, "-o", bin, "github.com/stack-containers/stack/cmd/stack"); err != nil {
		return "", err
	}
	return bin, nil
}

func goBuild(goTool string, args ...string) error {
	cmd := exec.Command(goTool, append([]string{"build", "-trimpath"}, args...)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("stacktest: go build %s: %w\n%s", args[len(args)-1], err, out)
	}
	return nil
}

// Cleanup removes the built binary; call it from TestMain after m.Run.
func Cleanup() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}
