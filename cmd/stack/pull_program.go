//go:build stackinit

package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"github.com/stack-containers/stack/image"
	"github.com/stack-containers/stack/internal/memexec"
	"github.com/stack-containers/stack/internal/pullexchange"
)

// pullELF is cmd/stack-pull as `make build` builds it, mapped onto
// stack-pull.elf with -overlay as the init is (see init_embedded.go).
//
//go:embed stack-pull.elf
var pullELF string

// pullMemfd is the pull program's sealed memfd while pulls run: made by
// the first of them, executed by every one that starts meanwhile (a
// supervisor pulls its stack's images side by side), and closed once the
// last has ended, so that a supervisor does not keep the program's pages
// for the life of its stack, which pulls nothing more. A command that
// pulls nothing pays nothing for it.
var pullMemfd struct {
	mu    sync.Mutex
	memfd *os.File
	users int
}

// acquirePullMemfd returns the pull program's memfd, and release to call
// when the pull that executes it has ended.
func acquirePullMemfd() (memfd *os.File, release func(), err error) {
	p := &pullMemfd
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.memfd == nil {
		if p.memfd, err = memexec.SealedMemfd("stack-pull", pullELF); err != nil {
			return nil, nil, err
		}
	}
	p.users++
	return p.memfd, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.users--; p.users == 0 {
			p.memfd.Close()
			p.memfd = nil
		}
	}, nil
}

// pullImage is the image.Puller of stack as `make build` builds it: one
// pull program for src, run from its memfd (package pullexchange draws
// the exchange). Its progress reaches opts.Progress as it comes; its
// error reads, and is of the kind, as the pull's in this process would
// be (see pull_inprocess.go).
func pullImage(ctx context.Context, s *image.Store, src image.Source, opts image.PullOptions) (*image.Image, error) {
	failed := func(err error) error {
		return &image.PullError{Source: src.String(), Err: fmt.Errorf("the pull program: %w", err)}
	}
	memfd, release, err := acquirePullMemfd()
	if err != nil {
		return nil, failed(err)
	}
	defer release()
	cmd, request, events, err := memexec.Start(memfd, "stack-pull", func(cmd *exec.Cmd) {
		cmd.Stderr = os.Stderr
		// A stack killed outright takes its pulls with it; one that ends
		// otherwise closes the request first (Exchange).
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	})
	if err != nil {
		return nil, failed(fmt.Errorf("start: %w", err))
	}
	defer request.Close()
	defer events.Close()
	img, err := pullexchange.Exchange(ctx, request, events, s, src, opts)
	werr := cmd.Wait()
	if errors.Is(err, pullexchange.ErrNoReply) {
		if werr != nil {
			return nil, failed(fmt.Errorf("ended without a reply (%v)", werr))
		}
		return nil, failed(err)
	}
	return img, err
}
