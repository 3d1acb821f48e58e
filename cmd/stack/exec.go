package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/runtime"
	"github.com/stack-containers/stack/supervisor"
)

func execCommand() *command {
	return &command{
		name:       "exec",
		args:       "[-T] [-u USER] [-w DIR] [-e KEY=VALUE]... CONTAINER COMMAND [ARG...]",
		summary:    "Run a command in a running container",
		flagsFirst: true,
		help: `Run COMMAND inside the running CONTAINER: in all of its namespaces (a child
in its pid namespace), its root, its cgroup (counted against its limits),
with its environment, capabilities and user unless -u, -w or -e say
otherwise. The command dies with the container.

A terminal of the container's own is allocated when stdin is one, unless -T;
window size changes and signals are passed on. stdin, stdout and stderr are
passed through.

The exit status is the command's (128+N when killed by signal N); 126 when it
cannot be executed, 127 when it is not found, 1 (with a message) when the
container is not running. Flags end at CONTAINER: the rest is the command.`,
		setup: func(fs *flag.FlagSet) func(context.Context, *app, []string) error {
			noTTY := fs.Bool("T", false, "do not allocate a terminal")
			user := fs.String("u", "", "run as `USER`: uid[:gid] or user[:group], names looked up in the container")
			workdir := fs.String("w", "", "run in `DIR` inside the container")
			var env []string
			fs.Func("e", "set `KEY=VALUE` in the environment (repeatable)", func(kv string) error {
				if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
					return fmt.Errorf("%q is not KEY=VALUE", kv)
				}
				env = append(env, kv)
				return nil
			})
			return func(ctx context.Context, a *app, args []string) error {
				if len(args) < 2 {
					return usageError("run 'stack help exec' for its usage", "exec: want a container and a command")
				}
				if *workdir != "" && !strings.HasPrefix(*workdir, "/") {
					return usageError("", "exec: -w %q is not an absolute path", *workdir)
				}
				name, cfg, err := a.target(nil)
				if err != nil {
					return err
				}
				req := supervisor.ExecRequest{
					Container: args[0], Args: args[1:], Env: env, Workdir: *workdir, User: *user,
					Stdin: os.Stdin, Stdout: a.stdout, Stderr: a.stderr,
				}
				req.Tty = !*noTTY && isTerminal(os.Stdin)
				return execute(a, cfg, name, req)
			}
		},
	}
}

// execute runs req to its end and returns the command's exit status as an
// exitStatus, or why it could not run.
func execute(a *app, cfg supervisor.Config, stack string, req supervisor.ExecRequest) error {
	if req.Tty {
		size, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ)
		if err == nil {
			req.TtySize = size
		}
		// As docker exec -t sets it; -e TERM=... comes after and wins.
		req.Env = append([]string{"TERM=xterm"}, req.Env...)
	}
	// Caught before the command starts, so that none is lost in between:
	// each is passed on to the command rather than ending stack.
	sigs := make(chan os.Signal, 8)
	forwarded := []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}
	if req.Tty {
		forwarded = append(forwarded, syscall.SIGWINCH)
	}
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)
	p, err := supervisor.Exec(cfg, stack, req)
	if err != nil {
		return execError(req.Container, err)
	}
	var output chan struct{}
	if console := p.Console(); console != nil {
		defer console.Close()
		restore, err := rawTerminal(os.Stdin)
		if err != nil {
			p.Kill()
			p.Wait()
			return fmt.Errorf("exec: %w", err)
		}
		defer restore()
		// The input copy ends with stack: a read of the terminal cannot
		// be interrupted.
		go io.Copy(console, os.Stdin)
		output = make(chan struct{})
		go func() {
			defer close(output)
			// Ends with EIO once every holder of the terminal's other
			// end (the command and its children) has closed it.
			io.Copy(a.stdout, console)
		}()
	}
	for done := false; !done; {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGWINCH {
				if size, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
					unix.IoctlSetWinsize(int(p.Console().Fd()), unix.TIOCSWINSZ, size)
				}
				continue
			}
			if err := p.Signal(sig.(syscall.Signal)); err != nil {
				fmt.Fprintf(a.stderr, "stack: warning: %v\n", err)
			}
		case <-p.Done():
			done = true
		}
	}
	st, err := p.Wait()
	if err != nil {
		return err
	}
	if output != nil {
		// What the command wrote just before it ended; a child of it
		// that keeps the terminal open does not hold stack up long.
		select {
		case <-output:
		case <-time.After(time.Second):
		}
	}
	return exitStatus(st.Code)
}

// execError gives a failure to start the command its exit status.
func execError(container string, err error) error {
	var ce *runtime.CommandError
	switch {
	case errors.Is(err, supervisor.ErrNotRunning):
		return &exitError{code: 1, err: err, hint: "stack ps shows the containers and their state"}
	case errors.As(err, &ce) && ce.NotFound():
		return &exitError{code: 127, err: err}
	case errors.As(err, &ce):
		return &exitError{code: 126, err: err}
	}
	return err
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// rawTerminal puts the terminal f into raw mode, as cfmakeraw(3) does, so
// that every key reaches the command's own terminal, which interprets
// them; restore puts it back.
func rawTerminal(f *os.File) (restore func(), err error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("read the terminal's mode: %w", err)
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, fmt.Errorf("put the terminal in raw mode: %w", err)
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}
