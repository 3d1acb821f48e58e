package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// A system is one way of running containers that the benchmarks compare:
// the floor, stack, the OCI runtimes and the compose tools.
type system interface {
	// name labels the system's rows.
	name() string
	// start launches b.n containers of b.argv and returns once the
	// system's own commands have returned; the containers keep running.
	start(ctx context.Context, b *batch) error
	// run launches b.n containers of b.argv and returns once every one of
	// them has ended.
	run(ctx context.Context, b *batch) error
	// down stops and removes everything start or run made for b.
	down(ctx context.Context, b *batch) error
}

// A batch is one measurement: n containers of one command line, with a
// name of their own.
type batch struct {
	// id is unique within the harness run; systems name containers,
	// cgroups and projects after it.
	id   string
	n    int
	argv []string
}

// containerName is the name of the i-th container of the batch.
func (b *batch) containerName(i int) string { return fmt.Sprintf("c%d", i) }

// command runs name with args, its output going to the file logPath, and
// returns its error with the end of that output, so that a peer's failure
// reads in the peer's own words. The output goes to a file, not a pipe:
// a detached container inherits it and would hold a pipe open forever.
func command(ctx context.Context, logPath string, env []string, name string, args ...string) error {
	return commandStartedBy(ctx, logPath, env, (*exec.Cmd).Start, name, args...)
}

// commandStartedBy is command with the start done by start (in another
// namespace, say).
func commandStartedBy(ctx context.Context, logPath string, env []string, start func(*exec.Cmd) error, name string, args ...string) error {
	out, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open output file of %s: %w", name, err)
	}
	defer out.Close()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	err = start(cmd)
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, tail(logPath, 3))
	}
	return nil
}

// tail returns the last n lines of a file, where a tool's error usually is.
func tail(path string, n int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(output unreadable: %v)", err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}
