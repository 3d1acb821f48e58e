//go:build stackinit

package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"github.com/stack-containers/stack/internal/export"
	"github.com/stack-containers/stack/internal/memexec"
)

// exportELF is cmd/stack-export as `make build` builds it, mapped onto
// stack-export.elf with -overlay as the init is (see init_embedded.go).
//
//go:embed stack-export.elf
var exportELF string

// exportKubernetes runs the export program from a sealed memfd with this
// process's stdin, stdout and stderr: it checks the options before the
// stack of args is loaded here, then exports the stack (package export
// draws the exchange).
func (a *app) exportKubernetes(_ context.Context, args []string, o export.Options) error {
	memfd, err := memexec.SealedMemfd("stack-export", exportELF)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer memfd.Close()
	cmd, requests, replies, err := memexec.Start(memfd, "stack-export", func(cmd *exec.Cmd) {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, a.stdout, a.stderr
	})
	if err != nil {
		return fmt.Errorf("export: start the export program: %w", err)
	}
	defer requests.Close()
	defer replies.Close()
	enc, dec := json.NewEncoder(requests), json.NewDecoder(replies)
	exchange := func(request any) error {
		var r export.Reply
		if err := enc.Encode(request); err != nil {
			return exportEnded(cmd, err)
		}
		if err := dec.Decode(&r); err != nil {
			return exportEnded(cmd, err)
		}
		return r.Err()
	}
	if err := exchange(o); err != nil {
		requests.Close()
		cmd.Wait()
		return err
	}
	st, err := a.loadStack(args)
	if err != nil {
		// The program ends on the request's EOF, with nothing to say.
		requests.Close()
		cmd.Wait()
		return err
	}
	err = exchange(st)
	requests.Close()
	if werr := cmd.Wait(); err == nil && werr != nil {
		return fmt.Errorf("export: the export program: %w", werr)
	}
	return err
}

// exportEnded is the error of an export program that ended, or broke
// the exchange, before it replied: how it ended, once it has.
func exportEnded(cmd *exec.Cmd, err error) error {
	werr := cmd.Wait()
	var exit *exec.ExitError
	if errors.As(werr, &exit) {
		// The reader of the objects went away (stack export | head): the
		// program died of SIGPIPE, as stack itself did when it exported,
		// saying nothing. stack cannot die of a SIGPIPE it sends itself
		// (the Go runtime ignores one that no write caused), so it ends
		// with the status a shell gives that death, and says nothing.
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGPIPE {
			return exitStatus(128 + int(syscall.SIGPIPE))
		}
		return fmt.Errorf("export: the export program ended without a reply (%v)", exit)
	}
	return fmt.Errorf("export: the export program's reply: %w", err)
}
