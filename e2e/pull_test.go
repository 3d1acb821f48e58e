package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/stack-containers/stack/internal/imagetest"
	"github.com/stack-containers/stack/internal/stacktest"
)

// TestImagePullOutputAsInProcess: stack as `make build` builds it pulls in
// the embedded pull program, and says what a plain `go build` of stack,
// which pulls in its own process, says: the line per image, the layers'
// progress on a terminal, and every failure's message and exit status,
// from `stack pull` and from a supervisor's pull at `up -d`.
func TestImagePullOutputAsInProcess(t *testing.T) {
	e := newEnv(t)
	reg := e.registry()
	reg.Push(t, "app", imagetest.App(t))
	reg.Push(t, "other", imagetest.Other(t))
	reg.Push(t, "foreign", imagetest.ForPlatform(t, imagetest.Other(t), imagetest.OtherArch()))
	refused := refusedAddr(t)

	inProcess := filepath.Join(t.TempDir(), "stack")
	build := exec.Command("go", "build", "-trimpath", "-o", inProcess, "github.com/stack-containers/stack/cmd/stack")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/stack: %v\n%s", err, out)
	}
	embedded := e.Bin
	// run runs stack args with bin, each run with a store of its own, so
	// that both binaries pull everything.
	run := func(bin string, args ...string) stacktest.Result {
		t.Helper()
		e.Bin, e.DataDir = bin, t.TempDir()
		defer func() { e.Bin = embedded }()
		return e.Run(args...)
	}
	both := fmt.Sprintf("containers:\n  app:\n    image: %s\n  other:\n    image: %s\n", reg.Ref("app"), reg.Ref("other"))
	for _, tc := range []struct {
		manifest string
		args     []string
		code     int
	}{
		{both, []string{"pull"}, 0},
		{both, []string{"pull", "other"}, 0},
		{fmt.Sprintf("containers:\n  web:\n    image: %s\n", reg.Ref("missing:v1")), []string{"pull"}, 1},
		{fmt.Sprintf("containers:\n  web:\n    image: %s/app\n", refused), []string{"pull"}, 1},
		{fmt.Sprintf("containers:\n  web:\n    image: %s\n", reg.Ref("foreign")), []string{"pull"}, 1},
		{"containers:\n  web:\n    image: oci:nowhere\n", []string{"pull"}, 1},
		{fmt.Sprintf("containers:\n  fine:\n    rootfs: {{rootfs}}\n    command: [sleep, \"1000\"]\n  web:\n    image: %s\n", reg.Ref("missing:v1")), []string{"up", "-d"}, 1},
	} {
		e.manifest(tc.manifest)
		want := run(inProcess, tc.args...)
		got := run(embedded, tc.args...)
		what := fmt.Sprintf("stack %s of\n%s", strings.Join(tc.args, " "), tc.manifest)
		if want.Code != tc.code {
			t.Errorf("%s: in process, exit %d, stderr %q; want %d", what, want.Code, want.Stderr, tc.code)
		}
		if got.Code != want.Code || got.Stdout != want.Stdout || got.Stderr != want.Stderr {
			t.Errorf("%s: through the pull program, exit %d\nstdout %q\nstderr %q\nin process, exit %d\nstdout %q\nstderr %q",
				what, got.Code, got.Stdout, got.Stderr, want.Code, want.Stdout, want.Stderr)
		}
		e.AssertNothingLeft()
	}

	// On a terminal: a line per layer, redrawn as it advances. The
	// layers come three at a time in either order, the bytes and speeds
	// of the lines before the last are the moment's, and of the two
	// images' pulls of their shared layer either may fetch it: what must
	// be the same is that every layer ends in the store, and the lines
	// per image.
	e.manifest(both)
	want := terminalPull(t, e, inProcess)
	got := terminalPull(t, e, embedded)
	if len(want) != 3+2+2 || !strings.HasSuffix(want[0], ": in the store") {
		t.Errorf("in process, on a terminal, pull drew %q; want 5 layers in the store and 2 images", want)
	}
	if !slices.Equal(got, want) {
		t.Errorf("through the pull program, on a terminal, pull drew\n%q\nin process\n%q", got, want)
	}
}

// terminalPull runs stack pull with bin on a terminal and returns the
// final lines it drew, sorted: every layer's last state (done and already
// in the store both "in the store"), and the lines per image.
func terminalPull(t *testing.T, e *env, bin string) []string {
	t.Helper()
	e.Bin, e.DataDir = bin, t.TempDir()
	defer func() { e.Bin = stacktest.Binary(t) }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := e.Command(ctx, e.Dir, "pull")
	tty, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var out bytes.Buffer
	io.Copy(&out, tty) // ends with EIO when stack is gone
	if err := cmd.Wait(); err != nil {
		t.Fatalf("stack pull on a terminal: %v\n%s", err, out.String())
	}
	redraw := regexp.MustCompile(`\x1b\[\d+A|\r\x1b\[K`)
	last := map[string]string{}
	var lines []string
	for line := range strings.Lines(redraw.ReplaceAllString(out.String(), "")) {
		line = strings.TrimRight(line, "\r\n")
		layer, state, isLayer := strings.Cut(line, ": ")
		if !isLayer || !strings.Contains(layer, " layer ") {
			lines = append(lines, line)
			continue
		}
		if state == "done" || state == "already in the store" {
			state = "in the store"
		}
		last[layer] = state
	}
	for layer, state := range last {
		lines = append(lines, layer+": "+state)
	}
	slices.Sort(lines)
	return lines
}
