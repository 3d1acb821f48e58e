package stacktest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stack-containers/stack/cgroup"
)

const (
	// commandTimeout bounds every command, so that a hang fails the test
	// instead of the whole run; it is far above any expected time.
	commandTimeout = 2 * time.Minute
	// waitDelay bounds how long a command's output may stay open after it
	// exits: a background supervisor that kept stack's stdout would
	// otherwise make Wait block until the supervisor ends. Past it, the
	// command fails with exec.ErrWaitDelay.
	waitDelay = 5 * time.Second
	// pollTimeout bounds Eventually and WaitFor.
	pollTimeout = 30 * time.Second
)

// Env is one test's world: the stack binary, and a state directory, a
// working directory and a cgroup parent that no other test shares.
// A test may point the fields elsewhere before its first command (a state
// directory that another user can reach, say); the check that nothing is
// left then looks where they point when the test ends.
type Env struct {
	Bin          string   // the stack binary
	StateDir     string   // STACK_STATE_DIR
	DataDir      string   // STACK_DATA_DIR: the image store, named volumes
	CgroupParent string   // STACK_CGROUP_PARENT
	Dir          string   // where commands run (Run); stack.yaml goes here
	ExtraEnv     []string // added to every command's environment, last

	t    testing.TB
	host cgroup.Host
	net  *netns
}

// New makes the test's Env and registers the check that nothing of it is
// left when the test ends (see the package documentation).
func New(t testing.TB) *Env {
	t.Helper()
	host, err := cgroup.Probe()
	if err != nil {
		t.Fatalf("stacktest: %v", err)
	}
	var id [6]byte
	if _, err := rand.Read(id[:]); err != nil {
		t.Fatalf("stacktest: cgroup parent name: %v", err)
	}
	ns, err := newNetns()
	if err != nil {
		t.Fatalf("stacktest: %v", err)
	}
	e := &Env{
		Bin:          Binary(t),
		StateDir:     t.TempDir(),
		DataDir:      t.TempDir(),
		CgroupParent: "stack-test-" + hex.EncodeToString(id[:]),
		Dir:          t.TempDir(),
		t:            t,
		host:         host,
		net:          ns,
	}
	// Registered after the temporary directories, so it runs before they
	// are removed (cleanups run last in, first out).
	t.Cleanup(e.finish)
	return e
}

// Environ is the environment stack runs with, for a test that runs a
// program of its own (a script that calls stack) in this Env.
func (e *Env) Environ() []string {
	env := append(os.Environ(),
		"STACK_STATE_DIR="+e.StateDir,
		"STACK_DATA_DIR="+e.DataDir,
		"STACK_CGROUP_PARENT="+e.CgroupParent,
		"NO_COLOR=1",
	)
	return append(env, e.ExtraEnv...)
}

// Command prepares `stack args...` run in dir.
func (e *Env) Command(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, e.Bin, args...)
	cmd.Dir = dir
	cmd.Env = e.Environ()
	cmd.WaitDelay = waitDelay
	e.net.wrap(cmd)
	return cmd
}

// Result is how a command ended.
type Result struct {
	Stdout, Stderr string
	Code           int // exit status
	Took           time.Duration
}

// Lines splits Stdout into its lines, without the final newline.
func (r Result) Lines() []string {
	if r.Stdout == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(r.Stdout, "\n"), "\n")
}

// Run runs `stack args...` in Dir to its end. A non-zero exit status is the
// caller's to judge; a command that cannot run, that holds its output open
// after it exits or that does not end within the timeout fails the test.
func (e *Env) Run(args ...string) Result {
	e.t.Helper()
	return e.RunIn(e.Dir, args...)
}

// RunIn is Run in another directory.
func (e *Env) RunIn(dir string, args ...string) Result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := e.Command(ctx, dir, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String(), Took: time.Since(start)}
	e.ended(ctx, args, err, &r)
	return r
}

// ended sets r.Code from how the command ended, and fails the test if it
// ended otherwise than by exiting in time.
func (e *Env) ended(ctx context.Context, args []string, err error, r *Result) {
	e.t.Helper()
	if ctx.Err() != nil {
		e.t.Fatalf("stack %s: no answer within %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), commandTimeout, r.Stdout, r.Stderr)
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.Code = exit.ExitCode()
	case err != nil:
		e.t.Fatalf("stack %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, r.Stdout, r.Stderr)
	}
}

// MustRun is Run for a command that has to succeed.
func (e *Env) MustRun(args ...string) Result {
	e.t.Helper()
	r := e.Run(args...)
	if r.Code != 0 {
		e.t.Fatalf("stack %s: exit status %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r
}

// PSRow is an element of `ps --format json`, spelled out from SPEC.md.
type PSRow struct {
	Name        string `json:"name"`
	State       string `json:"state"`
	Health      string `json:"health"` // "" without a health check
	Pid         int    `json:"pid"`
	Restarts    int    `json:"restarts"`
	OOMKills    int    `json:"oom_kills"`
	ExitCode    *int   `json:"exit_code"` // nil while running
	MemoryLimit int64  `json:"memory_limit"`
	MemoryUsage int64  `json:"memory_usage"`
	Uptime      int64  `json:"uptime"`
	IP          string `json:"ip"`
	Ports       []struct {
		HostIP        string `json:"host_ip"`
		HostPort      int    `json:"host_port"`
		ContainerPort int    `json:"container_port"`
		Protocol      string `json:"protocol"`
	} `json:"ports"`
}

// PS runs `stack args... ps --format json`, which has to succeed, and
// returns its rows by container name. args choose the stack (-f FILE,
// -p NAME).
func (e *Env) PS(args ...string) map[string]PSRow {
	e.t.Helper()
	r := e.MustRun(append(args, "ps", "--format", "json")...)
	var rows []PSRow
	if err := json.Unmarshal([]byte(r.Stdout), &rows); err != nil {
		e.t.Fatalf("stack ps --format json: %v\n%s", err, r.Stdout)
	}
	byName := make(map[string]PSRow, len(rows))
	for _, row := range rows {
		byName[row.Name] = row
	}
	return byName
}

// Eventually polls cond until it holds (true) or a generous deadline
// passes (false).
func (e *Env) Eventually(cond func() bool) bool {
	deadline := time.Now().Add(pollTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// WaitFor polls cond until it holds, and fails the test if the deadline of
// Eventually passes first.
func (e *Env) WaitFor(what string, cond func() bool) {
	e.t.Helper()
	if !e.Eventually(cond) {
		e.t.Fatalf("timed out waiting for %s", what)
	}
}
