package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stack-containers/stack/internal/busybox"
	"github.com/stack-containers/stack/internal/stacktest"
	"github.com/stack-containers/stack/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite many/stack.yaml instead of checking it")

// tools are built once by TestMain and only read by the tests; the stack
// binary is stacktest's.
var tools struct {
	mkrootfs string
	build    string // every example's tree, built by mkrootfs
}

// examplesDir is the examples' source directory, relative to this package.
const examplesDir = "../examples"

// exampleTools builds mkrootfs and every example's tree on first use; the
// examples' tests call it, the others need neither.
func exampleTools(t *testing.T) {
	t.Helper()
	toolsOnce.Do(func() { toolsErr = buildExampleTools() })
	if toolsErr != nil {
		t.Fatal(toolsErr)
	}
}

var (
	toolsOnce sync.Once
	toolsErr  error
	toolsDir  string
)

func buildExampleTools() error {
	dir, err := os.MkdirTemp("", "stack-examples-")
	if err != nil {
		return err
	}
	toolsDir = dir
	tools.mkrootfs = filepath.Join(dir, "mkrootfs")
	tools.build = filepath.Join(dir, "build")
	steps := [][]string{
		{"go", "build", "-trimpath", "-o", tools.mkrootfs, "github.com/stack-containers/stack/examples/cmd/mkrootfs"},
		// Without busybox, mkrootfs skips the seed's tree and says so; the
		// tests that need it skip (fail in CI) on their own.
		{tools.mkrootfs, "-o", tools.build, "-src", examplesDir},
		// The demo's registry, where make registry puts it.
		{"go", "build", "-trimpath", "-o", filepath.Join(tools.build, "registry"), "github.com/stack-containers/stack/examples/cmd/registry"},
	}
	for _, args := range steps {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// requireBusybox skips the test (fails it in CI) without a static busybox,
// which the seed's shell scripts need.
func requireBusybox(t *testing.T) {
	t.Helper()
	if _, err := busybox.Path(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must run this test, but: %v", err)
		}
		t.Skip(err)
	}
}

// needs skips the test (fails it in CI) when the host lacks what the
// example needs besides root.
func needs(t *testing.T, name string) {
	t.Helper()
	if name == "seed" {
		requireBusybox(t)
	}
}

// example copies an example's directory into a fresh temporary directory
// beside a link to the built trees, so that its ../build/<name> resolves
// there and the test never writes into the source tree. It returns the
// copied manifest's path.
func example(t *testing.T, name string) string {
	t.Helper()
	exampleTools(t)
	root := t.TempDir()
	if err := os.Symlink(tools.build, filepath.Join(root, "build")); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(root, name)
	if err := os.CopyFS(dst, os.DirFS(filepath.Join(examplesDir, name))); err != nil {
		t.Fatalf("copy example %s: %v", name, err)
	}
	return filepath.Join(dst, "stack.yaml")
}

// downAtEnd downs the stack at the end of the test, whatever happens in
// between, before the Env checks that nothing is left; a second down is not
// an error.
func downAtEnd(t *testing.T, s *stacktest.Env, manifest string) {
	t.Cleanup(func() {
		if r := s.Run("down", manifest); r.Code != 0 {
			t.Errorf("stack down: exit status %d: %s", r.Code, r.Stderr)
		}
	})
}

// upDetached starts the stack in the background.
func upDetached(t *testing.T, s *stacktest.Env, manifest string) stacktest.Result {
	t.Helper()
	downAtEnd(t, s, manifest)
	return s.MustRun("up", "-d", manifest)
}

// upForeground runs the stack in the foreground to its end and checks
// up's exit status.
func upForeground(t *testing.T, s *stacktest.Env, manifest string, wantCode int, why string) stacktest.Result {
	t.Helper()
	downAtEnd(t, s, manifest)
	r := s.Run("up", manifest)
	t.Logf("up ran for %v:\n%s", r.Took, r.Stdout)
	if r.Code != wantCode {
		t.Errorf("up: exit status %d; want %d (%s)\n%s", r.Code, wantCode, why, r.Stderr)
	}
	return r
}

// lines counts the lines of out that match the pattern.
func lines(out, pattern string) int {
	return len(regexp.MustCompile("(?m)"+pattern).FindAllStringIndex(out, -1))
}

// exampleNames lists the examples: the directories holding a stack.yaml.
func exampleNames(t *testing.T) []string {
	t.Helper()
	manifests, err := filepath.Glob(filepath.Join(examplesDir, "*", "stack.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range manifests {
		names = append(names, filepath.Base(filepath.Dir(m)))
	}
	if len(names) < 4 {
		t.Fatalf("found examples %v; want at least seed, web, crashloop and many", names)
	}
	return names
}

// manifestShape is what the test reads back from a manifest or from the
// normalized one `stack config` prints.
type manifestShape struct {
	Name       string `yaml:"name"`
	Containers map[string]struct {
		Rootfs string `yaml:"rootfs"`
	} `yaml:"containers"`
}

func TestConfig(t *testing.T) {
	for _, name := range exampleNames(t) {
		t.Run(name, func(t *testing.T) {
			needs(t, name)
			s := stacktest.New(t)
			manifest := example(t, name)
			r := s.Run("config", manifest)
			if r.Code != 0 {
				t.Fatalf("stack config: exit status %d\n%s", r.Code, r.Stderr)
			}
			var src, got manifestShape
			raw, err := os.ReadFile(manifest)
			if err != nil {
				t.Fatal(err)
			}
			if err := yaml.Unmarshal(raw, &src); err != nil {
				t.Fatalf("%s: %v", manifest, err)
			}
			if err := yaml.Unmarshal([]byte(r.Stdout), &got); err != nil {
				t.Fatalf("stack config printed no YAML: %v\n%s", err, r.Stdout)
			}
			if got.Name != name {
				t.Errorf("stack name %q; want %q (the example's directory)", got.Name, name)
			}
			if len(got.Containers) != len(src.Containers) {
				t.Errorf("%d containers; the manifest has %d", len(got.Containers), len(src.Containers))
			}
			want, err := os.Stat(filepath.Join(tools.build, name))
			if err != nil {
				t.Fatal(err)
			}
			for c := range src.Containers {
				fi, err := os.Stat(got.Containers[c].Rootfs)
				if err != nil || !os.SameFile(fi, want) {
					t.Errorf("container %s: rootfs %q (%v); want the built tree %s", c, got.Containers[c].Rootfs, err, want.Name())
				}
			}
			// The normalized manifest is itself a manifest, and a fixed
			// point: what the README tells users to rely on.
			again := filepath.Join(filepath.Dir(manifest), "normalized.yaml")
			if err := os.WriteFile(again, []byte(r.Stdout), 0o644); err != nil {
				t.Fatal(err)
			}
			if r2 := s.MustRun("config", again); r2.Stdout != r.Stdout {
				t.Errorf("stack config of its own output differs:\n%s\nvs\n%s", r2.Stdout, r.Stdout)
			}
		})
	}
}

func TestSeedUp(t *testing.T) {
	testenv.RequireRoot(t)
	requireBusybox(t)
	s := stacktest.New(t)
	manifest := example(t, "seed")
	r := upForeground(t, s, manifest, 1, "mem's last run was OOM-killed")
	// Each run's end says whether the OOM killer ended it (from the
	// cgroup's count, not from the live notification, which may coalesce).
	if n := lines(r.Stdout, `^mem +\* exited with status 137 \(killed by SIGKILL\), OOM-killed$`); n != 4 {
		t.Errorf("%d OOM-killed ends of mem in the output; want 4 (the first run and 3 restarts)", n)
	}
	if lines(r.Stdout, `^mem +\* gave up after 3 restarts`) != 1 {
		t.Errorf("no 'gave up after 3 restarts' event for mem")
	}
	if lines(r.Stdout, `^calm +\| done, never near the limit$`) != 1 || lines(r.Stdout, `^calm +\* exited with status 0$`) != 1 {
		t.Errorf("calm did not finish cleanly")
	}

	// ps and logs still answer after the stack has ended, until down.
	ps := s.PS("-f", manifest)
	// The OOM killer may take more than one process of a run (the shell
	// and dd, on cgroup v1); ps counts the runs it struck, one each.
	if mem := ps["mem"]; mem.State != "exited" || mem.Restarts != 3 || mem.OOMKills != 4 || mem.ExitCode == nil || *mem.ExitCode != 137 || mem.MemoryLimit != 2000000 {
		t.Errorf("ps: mem %+v; want exited with 137 after 3 restarts and 4 OOM kills, limit 2000000", mem)
	}
	if calm := ps["calm"]; calm.State != "exited" || calm.OOMKills != 0 || calm.ExitCode == nil || *calm.ExitCode != 0 {
		t.Errorf("ps: calm %+v; want exited with 0, no OOM kill", calm)
	}
	if logs := s.MustRun("-f", manifest, "logs", "calm"); lines(logs.Stdout, `round [1-4] of 4: 20000 random bytes hash to [0-9a-f]{32}`) != 4 {
		t.Errorf("logs calm: want its 4 rounds:\n%s", logs.Stdout)
	}
	s.MustRun("down", manifest)
}

func TestCrashloopUp(t *testing.T) {
	testenv.RequireRoot(t)
	s := stacktest.New(t)
	manifest := example(t, "crashloop")
	r := upForeground(t, s, manifest, 1, "flaky's last exit was 3")
	// The delays come from the policy, not from a clock: 100ms doubling,
	// capped at 1s.
	var delays []string
	for _, m := range regexp.MustCompile(`(?m)^flaky +\* restarting in (\S+) \(attempt (\d) of 5\)$`).FindAllStringSubmatch(r.Stdout, -1) {
		delays = append(delays, m[1])
	}
	if want := []string{"100ms", "200ms", "400ms", "800ms", "1s"}; !slices.Equal(delays, want) {
		t.Errorf("flaky's restart delays %v; want %v", delays, want)
	}
	if lines(r.Stdout, `^flaky +\* gave up after 5 restarts$`) != 1 {
		t.Errorf("no 'gave up after 5 restarts' event for flaky")
	}
	if lines(r.Stdout, `^once +\* exited with status 0$`) != 1 || lines(r.Stdout, `^once +\* restarting`) != 0 {
		t.Errorf("once: want one clean exit and no restart")
	}
	ps := s.PS("-f", manifest)
	if f := ps["flaky"]; f.Restarts != 5 || f.ExitCode == nil || *f.ExitCode != 3 {
		t.Errorf("ps: flaky %+v; want 5 restarts, exit code 3", f)
	}
	s.MustRun("down", manifest)
}

func TestWebUp(t *testing.T) {
	testenv.RequireRoot(t)
	s := stacktest.New(t)
	manifest := example(t, "web")
	up := upDetached(t, s, manifest)
	t.Logf("up -d took %v", up.Took)

	// The client reaches the server only through the net namespace it
	// joined; its first calls may come before the server listens. The
	// worker's first round ends about a second after its start.
	answered := regexp.MustCompile(`(?m)^client +\| GET http://127\.0\.0\.1:8080/: hello #\d+ from server \(pid 1\)$`)
	round := regexp.MustCompile(`(?m)^worker +\| round \d+: hashed 1024 KiB`)
	var logs stacktest.Result
	if !s.Eventually(func() bool {
		logs = s.MustRun("-f", manifest, "logs")
		return answered.MatchString(logs.Stdout) && round.MatchString(logs.Stdout)
	}) {
		if strings.Contains(logs.Stdout, "network is unreachable") {
			t.Errorf("the loopback interface of the server's net namespace is down: a new net namespace needs lo brought up before the program runs")
		}
		t.Fatalf("the client never got an answer from the server, or the worker never ended a round:\n%s", logs.Stdout)
	}
	if lines(logs.Stdout, `^server +\| listening on http://127\.0\.0\.1:8080 as server \(pid 1\)$`) != 1 {
		t.Errorf("logs: no 'listening' line from the server:\n%s", logs.Stdout)
	}

	limits := map[string]int64{"server": 32 << 20, "client": 32 << 20, "worker": 16 << 20}
	ps := s.PS("-f", manifest)
	for name, limit := range limits {
		row := ps[name]
		if row.State != "running" || row.Pid <= 0 || row.MemoryLimit != limit {
			t.Errorf("ps: %s %+v; want running with a pid and memory limit %d", name, row, limit)
		}
		if row.MemoryUsage <= 0 || row.MemoryUsage >= limit {
			t.Errorf("ps: %s uses %d bytes; want some, under its limit %d", name, row.MemoryUsage, limit)
		}
		t.Logf("%s: memory %d KiB of %d KiB", name, row.MemoryUsage>>10, limit>>10)
	}
	down := s.MustRun("down", manifest)
	t.Logf("down took %v", down.Took)
}

func TestManyUp(t *testing.T) {
	testenv.RequireRoot(t)
	s := stacktest.New(t)
	manifest := example(t, "many")
	up := upDetached(t, s, manifest)
	ps := s.PS("-f", manifest)
	if len(ps) != 50 {
		t.Errorf("ps shows %d containers; want 50", len(ps))
	}
	var usage int64
	for name, row := range ps {
		if row.State != "running" || row.Pid <= 0 {
			t.Errorf("ps: %s %+v; want running", name, row)
		}
		usage += row.MemoryUsage
	}
	down := s.MustRun("down", manifest)
	t.Logf("50 containers: up -d %v, down %v, memory in use %d KiB in all", up.Took, down.Took, usage>>10)
}

// TestReadmeManifests loads every manifest of the README through `stack
// config`: the reference (a yaml block with containers) and the ones written
// by a heredoc. Their rootfs and mount sources are stand-ins made here;
// what is checked is that the fields and values shown are valid together.
func TestReadmeManifests(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var manifests []string
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(readme), -1) {
		if strings.Contains(m[1], "containers:") {
			manifests = append(manifests, m[1])
		}
	}
	for _, m := range regexp.MustCompile(`(?s)cat > \S+ <<'EOF'\n(.*?)\nEOF\n`).FindAllStringSubmatch(string(readme), -1) {
		manifests = append(manifests, m[1]+"\n")
	}
	if len(manifests) < 2 {
		t.Fatalf("found %d manifests in the README; want the reference and the first stack", len(manifests))
	}
	s := stacktest.New(t)
	for i, text := range manifests {
		dir := t.TempDir()
		var m struct {
			Containers map[string]struct {
				Rootfs string   `yaml:"rootfs"`
				Mounts []string `yaml:"mounts"`
			} `yaml:"containers"`
		}
		if err := yaml.Unmarshal([]byte(text), &m); err != nil {
			t.Errorf("README manifest %d: %v\n%s", i+1, err, text)
			continue
		}
		for _, c := range m.Containers {
			paths := []string{c.Rootfs}
			for _, mount := range c.Mounts {
				paths = append(paths, strings.Split(mount, ":")[0])
			}
			for _, p := range paths {
				standIn(t, filepath.Join(dir, p))
			}
		}
		manifest := filepath.Join(dir, "stack.yaml")
		if err := os.WriteFile(manifest, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := s.Run("config", "-q", manifest); r.Code != 0 {
			t.Errorf("README manifest %d: stack config: exit status %d\n%s\n%s", i+1, r.Code, r.Stderr, text)
		}
	}
}

// TestReadmeCoversEverything checks that the README's manifest reference
// shows every field of schema.json, and that it documents every command
// `stack help` lists, each under its own heading.
func TestReadmeCoversEverything(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties map[string]any `json:"properties"`
		Defs       struct {
			Container struct {
				Properties map[string]struct {
					OneOf []struct {
						Properties map[string]any `json:"properties"`
					} `json:"oneOf"`
				} `json:"properties"`
			} `json:"container"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatalf("schema.json: %v", err)
	}
	fields := slices.Collect(maps.Keys(schema.Properties))
	for name, p := range schema.Defs.Container.Properties {
		fields = append(fields, name)
		for _, alt := range p.OneOf {
			fields = slices.AppendSeq(fields, maps.Keys(alt.Properties))
		}
	}
	if len(fields) < 20 {
		t.Fatalf("read %d fields from schema.json; its layout changed?", len(fields))
	}
	var reference string
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(readme), -1) {
		if strings.Contains(m[1], "containers:") {
			reference = m[1]
			break
		}
	}
	for _, f := range fields {
		if !regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(f) + `:`).MatchString(reference) {
			t.Errorf("the README's manifest reference does not show the field %q", f)
		}
	}

	s := stacktest.New(t)
	help := s.MustRun("help")
	_, list, ok := strings.Cut(help.Stdout, "Commands:\n")
	if !ok {
		t.Fatalf("stack help lists no commands:\n%s", help.Stdout)
	}
	list, _, _ = strings.Cut(list, "\n\n")
	for _, line := range strings.Split(list, "\n") {
		cmd := strings.Fields(line)[0]
		if cmd == "help" {
			continue
		}
		if !regexp.MustCompile("(?m)^### `stack " + regexp.QuoteMeta(cmd) + "[ `]").MatchString(string(readme)) {
			t.Errorf("the README has no section for `stack %s`", cmd)
		}
	}
}

// standIn makes a rootfs or mount source at p: an archive of the crashloop
// tree when the name says archive, else a directory.
func standIn(t *testing.T, p string) {
	t.Helper()
	exampleTools(t)
	if !strings.HasSuffix(p, ".tar") && !strings.HasSuffix(p, ".tar.gz") && !strings.HasSuffix(p, ".tgz") {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		return
	}
	args := []string{"-C", filepath.Join(tools.build, "crashloop"), "-cf", p, "."}
	if !strings.HasSuffix(p, ".tar") {
		args[2] = "-czf"
	}
	if out, err := exec.Command("tar", args...).CombinedOutput(); err != nil {
		t.Fatalf("tar %v: %v\n%s", args, err, out)
	}
}

// demoCopy lays out the demo and the examples it runs as in the
// repository, and returns the copied script.
func demoCopy(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "examples")
	for _, name := range []string{"web", "seed"} {
		if err := os.CopyFS(filepath.Join(dir, name), os.DirFS(filepath.Join(examplesDir, name))); err != nil {
			t.Fatal(err)
		}
	}
	exampleTools(t)
	script, err := os.ReadFile(filepath.Join(examplesDir, "demo.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "demo.sh"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(tools.build, filepath.Join(dir, "build")); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "demo.sh")
}

// TestDemo runs the tour of `make demo` on a copy of the examples, so that
// the demo cannot rot either.
func TestDemo(t *testing.T) {
	testenv.RequireRoot(t)
	requireBusybox(t)
	s := stacktest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, demoCopy(t), s.Bin)
	cmd.Env = s.Environ()
	s.InNetns(cmd)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("the tour took %v:\n%s", time.Since(start), out)
	if err != nil {
		t.Fatalf("demo.sh: %v", err)
	}
	for _, want := range []string{
		`^stack "web" is up: 3 containers running$`,
		`^worker +\| round \d+: hashed 1024 KiB`,
		`^127\.0\.0\.1:\d+/demo/worker:latest: [0-9a-f]{12}, 1 layers, `,
		`^stack "image-demo" is up: 1 container running$`,
		`^worker +\| round \d+: hashed 64 KiB`,
		`^127\.0\.0\.1:\d+/demo/worker:latest +[0-9a-f]{12} .* image-demo$`,
		`^mem +\* exited with status 137 \(killed by SIGKILL\), OOM-killed$`,
		`^mem +\* restarting in 100ms \(attempt 1 of 3\)$`,
		`^mem +\* gave up after 3 restarts$`,
		`^calm +exited +0 +0 +0 .* exit 0$`,
		`^Done\.`,
	} {
		if lines(string(out), want) == 0 {
			t.Errorf("the tour shows no line matching %s", want)
		}
	}
}

// TestDemoInterrupted presses Ctrl-C (SIGINT to the tour's process group,
// as a terminal does) once the web stack is up: the tour must down it.
func TestDemoInterrupted(t *testing.T) {
	testenv.RequireRoot(t)
	s := stacktest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, demoCopy(t), s.Bin)
	cmd.Env = s.Environ()
	s.InNetns(cmd)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), `stack "web" is up`) {
			if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
				t.Errorf("interrupt the tour: %v", err)
			}
			break
		}
	}
	// Drain the rest, so that the script never blocks on a full pipe.
	rest, _ := io.ReadAll(stdout)
	out.Write(rest)
	err = cmd.Wait()
	t.Logf("output:\n%s\nstderr:\n%s", out.String(), stderr.String())
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 130 {
		t.Errorf("demo.sh after Ctrl-C: %v; want exit status 130", err)
	}
	// The Env's check at the end of the test sees whether it downed web.
}

// manyManifest is many/stack.yaml: 50 copies of one small service.
func manyManifest() []byte {
	var b bytes.Buffer
	b.WriteString(`# yaml-language-server: $schema=../../schema.json
#
# Fifty small services, to show how fast stack starts and stops a stack and
# what ps shows. Each prints one line when ready and exits cleanly on SIGTERM.
#
# Generated: go test ./e2e -run TestManyManifest -update
name: many
containers:
`)
	for i := 1; i <= 50; i++ {
		fmt.Fprintf(&b, "  idle-%02d:\n    rootfs: ../build/many\n    command: /bin/idle\n    memory: 16M\n    pids: 16\n", i)
	}
	return b.Bytes()
}

func TestManyManifest(t *testing.T) {
	path := filepath.Join(examplesDir, "many", "stack.yaml")
	want := manyManifest()
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date: go test ./e2e -run TestManyManifest -update", path)
	}
}

func TestRootfsReproducible(t *testing.T) {
	exampleTools(t)
	a, b := t.TempDir(), t.TempDir()
	digests := func(dir string) map[string]string {
		out, err := exec.Command(tools.mkrootfs, "-o", dir, "-src", examplesDir).Output()
		if err != nil {
			t.Fatalf("mkrootfs -o %s: %v", dir, err)
		}
		m := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			path, sum, ok := strings.Cut(line, "  ")
			if !ok {
				t.Fatalf("mkrootfs printed %q; want PATH  sha256:HEX", line)
			}
			m[filepath.Base(path)] = sum
		}
		return m
	}
	first := digests(a)
	second := digests(b)
	// Building over an existing tree replaces it by the same tree.
	rebuilt := digests(a)
	for name, sum := range first {
		if second[name] != sum || rebuilt[name] != sum {
			t.Errorf("tree %s: digests %s, %s, %s; want all equal", name, sum, second[name], rebuilt[name])
		}
	}
	ea, eb := entries(t, a), entries(t, b)
	if !slices.Equal(ea, eb) {
		for i := range min(len(ea), len(eb)) {
			if ea[i] != eb[i] {
				t.Fatalf("trees differ first at\n  %s\n  %s", ea[i], eb[i])
			}
		}
		t.Fatalf("trees differ: %d entries vs %d", len(ea), len(eb))
	}
	if len(ea) == 0 {
		t.Fatal("mkrootfs built nothing")
	}
}

// entries describes every entry under dir, in lexical order, by path, mode,
// mtime and content (or link target); every mtime must be the epoch.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	var list []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if !fi.ModTime().Equal(busybox.Epoch()) {
			t.Errorf("%s: mtime %v; want %v", rel, fi.ModTime(), busybox.Epoch())
		}
		var content []byte
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			content = []byte(target)
			if err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			if content, err = os.ReadFile(p); err != nil {
				return err
			}
		}
		list = append(list, fmt.Sprintf("%s %v %x", rel, fi.Mode(), sha256.Sum256(content)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return list
}
