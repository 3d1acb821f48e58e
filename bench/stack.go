package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// stackTool drives the stack binary under test with a state directory and
// cgroup parent of the harness's own.
type stackTool struct {
	// label tells the rows of a variant apart (where its state lives).
	label  string
	bin    string
	dir    string
	env    []string
	rootfs string
	prefix string
	// network is the containers' network in the manifest: none, or empty
	// for the stack network, which is then made in net.
	network string
	net     *benchNetns
}

func newStackTool(bin, dir, rootfs, cgroupParent, prefix string) (*stackTool, error) {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return nil, fmt.Errorf("stack binary %s: %w", bin, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("stack binary: %w (make build)", err)
	}
	state := filepath.Join(dir, "state")
	if err := os.MkdirAll(state, 0o755); err != nil {
		return nil, fmt.Errorf("stack: make state directory: %w", err)
	}
	return &stackTool{
		bin:     abs,
		dir:     dir,
		env:     []string{"STACK_STATE_DIR=" + state, "STACK_CGROUP_PARENT=" + cgroupParent, "NO_COLOR=1"},
		rootfs:  rootfs,
		prefix:  prefix,
		network: "none",
	}, nil
}

func (s *stackTool) manifest(b *batch) string {
	return filepath.Join(s.dir, "stacks", b.id, "stack.yaml")
}

func (s *stackTool) out(b *batch) string {
	return filepath.Join(s.dir, "stacks", b.id, "out")
}

// writeManifest writes the batch's stack.yaml: a container per b.n running
// b.argv on the shared rootfs, with extra fields (limits, restart policy)
// merged into each. JSON is YAML. Every "$" of the command is written
// "$$": the manifest would otherwise read the shell's variables ($x) as
// its own.
func (s *stackTool) writeManifest(b *batch, extra map[string]any) error {
	command := make([]string, len(b.argv))
	for i, arg := range b.argv {
		command[i] = strings.ReplaceAll(arg, "$", "$$")
	}
	containers := map[string]any{}
	for i := range b.n {
		// network: none keeps the rows comparable with the floors and
		// runc, which give containers no network either; the row with
		// the stack network is compared with the veth floor, and runs in
		// the harness's network namespace, never the host's.
		c := map[string]any{"rootfs": s.rootfs, "command": command}
		if s.network != "" {
			c["network"] = s.network
		}
		for k, v := range extra {
			c[k] = v
		}
		containers[b.containerName(i)] = c
	}
	raw, err := json.MarshalIndent(map[string]any{"name": s.prefix + "-" + b.id, "containers": containers}, "", "  ")
	if err != nil {
		return fmt.Errorf("stack: encode manifest: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(s.manifest(b)), 0o755); err != nil {
		return fmt.Errorf("stack: make manifest directory: %w", err)
	}
	if err := os.WriteFile(s.manifest(b), raw, 0o644); err != nil {
		return fmt.Errorf("stack: write manifest: %w", err)
	}
	return nil
}

func (s *stackTool) stack(ctx context.Context, b *batch, args ...string) error {
	args = append([]string{"-f", s.manifest(b)}, args...)
	if s.net == nil {
		return command(ctx, s.out(b), s.env, s.bin, args...)
	}
	return commandStartedBy(ctx, s.out(b), s.env, s.net.start, s.bin, args...)
}

// cmd prepares `stack -f MANIFEST args...` without running it.
func (s *stackTool) cmd(ctx context.Context, b *batch, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.bin, append([]string{"-f", s.manifest(b)}, args...)...)
	cmd.Env = append(os.Environ(), s.env...)
	return cmd
}

// psEntry is what the harness reads of `stack ps --format json`.
type psEntry struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Pid      int    `json:"pid"`
	Restarts int    `json:"restarts"`
	OOMKills int    `json:"oom_kills"`
	ExitCode *int   `json:"exit_code"`
}

func (s *stackTool) ps(ctx context.Context, b *batch) ([]psEntry, error) {
	out, err := s.cmd(ctx, b, "ps", "--format", "json").Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return nil, fmt.Errorf("stack ps: %w: %s", err, exit.Stderr)
		}
		return nil, fmt.Errorf("stack ps: %w", err)
	}
	var entries []psEntry
	if err := json.Unmarshal(out, &entries); err != nil {
		return nil, fmt.Errorf("stack ps: decode %q: %w", out, err)
	}
	return entries, nil
}

// waitEnded polls `stack ps` until every container of b has ended. The
// poll is what a user would do; its period bounds the error it adds.
func (s *stackTool) waitEnded(ctx context.Context, b *batch) error {
	for {
		entries, err := s.ps(ctx, b)
		if err != nil {
			return err
		}
		ended := 0
		for _, e := range entries {
			if e.State == "exited" || e.State == "stopped" {
				ended++
			}
		}
		if ended == b.n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stack: wait for %d containers to end (%d ended): %w", b.n, ended, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (s *stackTool) down(ctx context.Context, b *batch) error { return s.stack(ctx, b, "down") }

// stackDetached is `stack up -d`: it returns once every container runs.
type stackDetached struct{ *stackTool }

func (s stackDetached) name() string { return "stack up -d" + s.label }

func (s stackDetached) start(ctx context.Context, b *batch) error {
	if err := s.writeManifest(b, nil); err != nil {
		return err
	}
	return s.stack(ctx, b, "up", "-d")
}

func (s stackDetached) run(ctx context.Context, b *batch) error {
	if err := s.start(ctx, b); err != nil {
		return err
	}
	return s.waitEnded(ctx, b)
}

// stackForeground is `stack up` streaming the logs, as a user runs it in a
// terminal; its output goes to /dev/null.
type stackForeground struct {
	*stackTool
	running map[string]*exec.Cmd
}

func (s *stackForeground) name() string { return "stack up" }

func (s *stackForeground) start(ctx context.Context, b *batch) error {
	if err := s.writeManifest(b, nil); err != nil {
		return err
	}
	// Not tied to ctx: it must outlive start, until down.
	cmd := s.cmd(context.WithoutCancel(ctx), b, "up")
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("stack up: %w", err)
	}
	s.running[b.id] = cmd
	return nil
}

func (s *stackForeground) run(ctx context.Context, b *batch) error {
	if err := s.writeManifest(b, nil); err != nil {
		return err
	}
	return runToNull(s.cmd(ctx, b, "up"))
}

// runToNull runs a prepared command with its output to /dev/null, like a
// terminal that keeps up with anything, and keeps stderr for the error.
func runToNull(cmd *exec.Cmd) error {
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// upAfterDown bounds how long the foreground `up` may take to return once
// `down` has: its containers are gone by then, and an `up` that hangs
// must not hang the run (it was started apart from any deadline).
const upAfterDown = 30 * time.Second

// down runs `stack down` from the side, as from another terminal, and
// then waits for the foreground `up` to return, killing it after
// upAfterDown or when ctx ends.
func (s *stackForeground) down(ctx context.Context, b *batch) error {
	err := s.stackTool.down(ctx, b)
	if cmd, ok := s.running[b.id]; ok {
		delete(s.running, b.id)
		if werr := waitOrKill(ctx, cmd, upAfterDown); werr != nil && err == nil {
			err = fmt.Errorf("stack up after down: %w", werr)
		}
	}
	return err
}

// waitOrKill waits for cmd to end of itself, and kills it if it has not
// when ctx ends or after grace. The command's output must go to files,
// not pipes, so that its end is the end of the wait.
func waitOrKill(ctx context.Context, cmd *exec.Cmd, grace time.Duration) error {
	ended := make(chan error, 1)
	go func() { ended <- cmd.Wait() }()
	ctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	select {
	case err := <-ended:
		return err
	case <-ctx.Done():
	}
	if err := cmd.Process.Kill(); errors.Is(err, os.ErrProcessDone) {
		return <-ended // it ended just now, of itself
	} else if err != nil {
		return fmt.Errorf("did not end: %w; kill: %w", ctx.Err(), err)
	}
	<-ended
	return fmt.Errorf("did not end: %w; killed", ctx.Err())
}
