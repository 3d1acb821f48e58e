package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestEveryCommandHasHelp keeps -h and `help NAME` working for every
// command that stack help lists, including those added later.
func TestEveryCommandHasHelp(t *testing.T) {
	var usage bytes.Buffer
	a := &app{commands: commands()}
	a.usage(&usage)
	for _, cmd := range a.commands {
		if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(cmd.name) + ` `).Match(usage.Bytes()) {
			continue // a hidden command, for stack's own use
		}
		for _, args := range [][]string{{cmd.name, "-h"}, {"help", cmd.name}} {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), args, &stdout, &stderr); code != 0 || stderr.Len() > 0 {
				t.Errorf("stack %s: status %d, stderr %q", strings.Join(args, " "), code, stderr.String())
			}
			if !strings.HasPrefix(stdout.String(), "Usage: stack [-f FILE] [-p NAME] "+cmd.name) || !strings.Contains(stdout.String(), cmd.help) {
				t.Errorf("stack %s printed:\n%s", strings.Join(args, " "), stdout.String())
			}
		}
		if cmd.summary == "" || cmd.help == "" || strings.HasSuffix(cmd.summary, ".") {
			t.Errorf("command %s: summary %q, help %q", cmd.name, cmd.summary, cmd.help)
		}
	}
}

// TestVersionFromLinker builds the binary as the Makefile does and checks
// that -X main.version reaches `stack version`.
func TestVersionFromLinker(t *testing.T) {
	gobin := filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		if gobin, err = exec.LookPath("go"); err != nil {
			t.Skip("no go toolchain to build the binary with")
		}
	}
	bin := filepath.Join(t.TempDir(), "stack")
	build := exec.Command(gobin, "build", "-ldflags", "-X main.version=9.8.7-test", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("stack version: %v", err)
	}
	if !strings.HasPrefix(string(out), "stack version 9.8.7-test ") {
		t.Errorf("stack version printed %q", out)
	}
}
