package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stack-containers/stack/internal/stacktest"
)

// commandTimeout bounds every run of stack, so that a hang fails the test
// instead of the whole run; it is far above any expected time.
const commandTimeout = 2 * time.Minute

// result is what one run of stack left.
type result struct {
	code           int
	stdout, stderr string
}

// stack runs the command with args in dir, as a user would.
func stack(t *testing.T, dir string, args ...string) result {
	t.Helper()
	return invocation{dir: dir}.run(t, args...)
}

// invocation is how a test runs stack, beyond its arguments.
type invocation struct {
	dir string
	// env is added to the test's environment.
	env []string
	// exe is the binary to run; empty means stacktest's.
	exe string
	// user runs stack as another user; nil runs it as the test.
	user *syscall.Credential
}

func (in invocation) run(t *testing.T, args ...string) result {
	t.Helper()
	exe := in.exe
	if exe == "" {
		exe = stacktest.Binary(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Dir = in.dir
	cmd.Env = append(os.Environ(), in.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: in.user}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 10 * time.Second
	var r result
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("run stack %s: %v", strings.Join(args, " "), err)
		}
		r.code = ee.ExitCode()
	}
	r.stdout, r.stderr = stdout.String(), stderr.String()
	return r
}

// ran is how a run of stacktest's binary ended, for expect.
func ran(r stacktest.Result) result {
	return result{code: r.Code, stdout: r.Stdout, stderr: r.Stderr}
}

// expect checks the exit status and that each pattern matches a line of
// the stream it names ("stdout" or "stderr"; "!stdout" must not match).
func (r result) expect(t *testing.T, code int, patterns ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for i := 0; i+1 < len(patterns); i += 2 {
		stream, re := patterns[i], regexp.MustCompile("(?m)"+patterns[i+1])
		text := map[string]string{"stdout": r.stdout, "stderr": r.stderr}[strings.TrimPrefix(stream, "!")]
		if re.MatchString(text) == strings.HasPrefix(stream, "!") {
			t.Errorf("%s %s %q:\n%s", stream, map[bool]string{true: "matches", false: "does not match"}[strings.HasPrefix(stream, "!")], re, text)
		}
	}
}

// writeFiles creates files (path: content) under dir; a path ending in "/"
// is a directory.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const demoManifest = `name: demo
containers:
  web:
    rootfs: ./rootfs
    command: /bin/server --port 8080
    env: [GREETING=hello]
    memory: 64M
    restart: on-oom
    mounts: ["./data:/data:ro"]
  db:
    rootfs: rootfs
    command: [sleep, "1000"]
    join: {uts: web}
    stop_signal: INT
`

const demoNormalized = `name: demo
containers:
  db:
    rootfs: $WORK/app/rootfs
    command:
      - sleep
      - "1000"
    workdir: /
    user: "0:0"
    namespaces:
      - pid
      - mount
      - ipc
      - net
    join:
      uts: web
    restart:
      policy: "no"
      max_retries: 0
      backoff: 100ms
      max_backoff: 10s
    stop_signal: SIGINT
    stop_timeout: 10s
    read_only: false
    network: stack
    seccomp: default
  web:
    rootfs: $WORK/app/rootfs
    command:
      - /bin/server
      - --port
      - "8080"
    env:
      GREETING: hello
    workdir: /
    hostname: web
    user: "0:0"
    namespaces:
      - pid
      - mount
      - uts
      - ipc
      - net
    memory: 67108864
    restart:
      policy: on-oom
      max_retries: 0
      backoff: 100ms
      max_backoff: 10s
    stop_signal: SIGTERM
    stop_timeout: 10s
    read_only: false
    mounts:
      - $WORK/app/data:/data:ro
    network: stack
    seccomp: default
`

func TestConfigPrintsTheNormalizedManifest(t *testing.T) {
	work := t.TempDir()
	writeFiles(t, work, map[string]string{"app/stack.yaml": demoManifest, "app/rootfs/": "", "app/data/": ""})
	app := filepath.Join(work, "app")
	want := strings.ReplaceAll(demoNormalized, "$WORK", work)
	for _, tc := range []struct {
		dir  string
		args []string
	}{
		{work, []string{"config", "app/stack.yaml"}},
		{work, []string{"-f", "app/stack.yaml", "config"}},
		{app, []string{"config"}},
		{app, []string{"config", "--", "stack.yaml"}},
	} {
		r := stack(t, tc.dir, tc.args...)
		r.expect(t, 0)
		if r.stdout != want || r.stderr != "" {
			t.Errorf("stack %s in %s printed:\n%s\nstderr: %s\nwant:\n%s", strings.Join(tc.args, " "), tc.dir, r.stdout, r.stderr, want)
		}
	}

	// The output is a manifest that loads into the same stack.
	if err := os.WriteFile(filepath.Join(app, "again.yaml"), []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := stack(t, app, "config", "again.yaml"); r.stdout != want {
		t.Errorf("the printed manifest loads differently:\n%s", r.stdout)
	}

	// -q only validates; -p renames the stack; flags may follow arguments.
	stack(t, app, "-p", "other", "config", "stack.yaml", "-q").expect(t, 0, "!stdout", ".")
	stack(t, app, "-p", "other", "config").expect(t, 0, "stdout", "^name: other$")
}

func TestConfigFindsStackYml(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"My App/stack.yml": "containers:\n  one:\n    rootfs: r\n    command: [run]\n", "My App/r/": ""})
	stack(t, filepath.Join(dir, "My App"), "config").expect(t, 0, "stdout", "^name: my-app$", "stdout", "^  one:$")
}

func TestManifestErrors(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"rootfs/": "", "stack.yaml": `containers:
  web:
    rootfs: ./rootfs
    comand: [/bin/server]
    memory: 64X
    depends_on: [db]
  db:
    rootfs: ./missing
    command: "sh -c 'unterminated"
`})
	want := `stack: error: invalid manifest (5 problems):
stack.yaml:2:3: containers.web: command is required with rootfs
stack.yaml:4:5: containers.web: unknown field "comand" (did you mean "command"?)
stack.yaml:5:13: containers.web.memory: "64X" is not a size: use bytes (2000000) or a number with k, m or g (64M)
stack.yaml:8:13: containers.db.rootfs: rootfs "./missing" does not exist
stack.yaml:9:14: containers.db.command: command has an unterminated single quote
`
	for _, args := range [][]string{{"config", "stack.yaml"}, {"-f", "stack.yaml", "config"}, {"config"}} {
		r := stack(t, dir, args...)
		r.expect(t, 2, "!stdout", ".")
		if r.stderr != want {
			t.Errorf("stack %s: stderr\n%s\nwant\n%s", strings.Join(args, " "), r.stderr, want)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"stack.yaml": "containers: {}\n", "empty/": ""})
	for _, tc := range []struct {
		dir      string
		args     []string
		patterns []string
	}{
		{dir, nil, []string{"stderr", `^Usage: stack \[-f FILE\] \[-p NAME\] COMMAND`, "stderr", "^stack: error: no command given$"}},
		{dir, []string{"frobnicate"}, []string{"stderr", `^stack: error: unknown command "frobnicate"$`, "stderr", `^hint: run 'stack help' for the list of commands$`}},
		{dir, []string{"-x", "config"}, []string{"stderr", "^stack: error: flag provided but not defined: -x$", "stderr", `^hint: run 'stack help' for the global flags$`}},
		{dir, []string{"config", "-x"}, []string{"stderr", "^stack: error: config: flag provided but not defined: -x$", "stderr", `^hint: run 'stack help config' for its usage$`}},
		{dir, []string{"-p", "Bad/Name", "config"}, []string{"stderr", `^stack: error: -p: invalid name "Bad/Name"`}},
		{dir, []string{"-f"}, []string{"stderr", "^stack: error: flag needs an argument: -f$"}},
		{dir, []string{"config", "a.yaml", "b.yaml"}, []string{"stderr", "^stack: error: too many arguments: b.yaml$"}},
		{dir, []string{"-f", "stack.yaml", "config", "stack.yaml"}, []string{"stderr", "^stack: error: the manifest is named twice: -f stack.yaml and stack.yaml$", "stderr", "^hint: "}},
		{dir, []string{"version", "extra"}, []string{"stderr", "^stack: error: version takes no arguments$"}},
		{dir, []string{"help", "frobnicate"}, []string{"stderr", `^stack: error: unknown command "frobnicate"$`}},
		{filepath.Join(dir, "empty"), []string{"config"}, []string{"stderr", "^stack: error: no stack.yaml or stack.yml in the current directory$", "stderr", "^hint: name the manifest with -f FILE"}},
		{dir, []string{"config", "nope.yaml"}, []string{"stderr", "^stack: error: read manifest: open nope.yaml: no such file or directory$"}},
		{dir, []string{"config"}, []string{"stderr", `^stack.yaml:1:13: containers: must define at least one container$`}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			stack(t, tc.dir, tc.args...).expect(t, 2, append(tc.patterns, "!stdout", ".")...)
		})
	}
}

func TestHelp(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args     []string
		patterns []string
	}{
		{[]string{"help"}, []string{
			"stdout", `^Usage: stack \[-f FILE\] \[-p NAME\] COMMAND \[ARGS\]$`,
			"stdout", "^  config +Validate and print the normalized manifest$",
			"stdout", "^  version +Print the version$",
			"stdout", "^  help +Show help for stack or a command$",
			"stdout", `^  -f FILE +the manifest \(default ./stack.yaml, then ./stack.yml\)$`,
		}},
		{[]string{"-h"}, []string{"stdout", "^Commands:$"}},
		{[]string{"--help"}, []string{"stdout", "^Commands:$"}},
		{[]string{"config", "-h"}, []string{"stdout", `^Usage: stack \[-f FILE\] \[-p NAME\] config \[-q\] \[FILE\]$`, "stdout", `^  -q\s`}},
		{[]string{"help", "config"}, []string{"stdout", `^Usage: stack \[-f FILE\] \[-p NAME\] config \[-q\] \[FILE\]$`}},
		{[]string{"version", "-h"}, []string{"stdout", `^Usage: stack \[-f FILE\] \[-p NAME\] version$`}},
		{[]string{"help", "-h"}, []string{"stdout", `^Usage: stack \[-f FILE\] \[-p NAME\] help \[COMMAND\]$`}},
		{[]string{"version"}, []string{"stdout", `^stack version 0\.1\.0-dev \(go[0-9.]+\S* linux/[a-z0-9]+\)$`}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			stack(t, dir, tc.args...).expect(t, 0, append(tc.patterns, "!stderr", ".")...)
		})
	}
}
