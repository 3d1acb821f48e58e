package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/stack-containers/stack/manifest"
	"github.com/stack-containers/stack/runtime/containerinit"
)

func main() {
	// ---- runtime init hook -------------------------------------------------
	// When the supervisor re-executes this binary as a container's init, the
	// init's hook (containerinit) takes over here and never returns. It must stay
	// the first statement of main: nothing may start goroutines, parse flags
	// or touch file descriptors before it.
	// ------------------------------------------------------------------------
	containerinit.MaybeInit()
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// commands is the command table, in the order help lists them. A verb
// lives in its own file as a function returning its *command; adding one
// is adding it here.
func commands() []*command {
	return []*command{
		upCommand(),
		downCommand(),
		psCommand(),
		logsCommand(),
		execCommand(),
		configCommand(),
		pullCommand(),
		imagesCommand(),
		pruneCommand(),
		exportCommand(),
		versionCommand(),
		helpCommand(),
		superviseCommand(),
	}
}

// command is one verb of the command line.
type command struct {
	name string
	// args is the synopsis after the name, such as "[FILE]".
	args    string
	summary string
	// hidden keeps the command out of the list help prints: it is run by
	// stack itself, not by users.
	hidden bool
	// flagsFirst ends the command's flags at its first positional
	// argument: what follows is another program's command line
	// (`stack exec web ls -l`).
	flagsFirst bool
	// help is the text after the usage line of `stack help NAME`.
	help string
	// setup declares the command's flags on fs and returns the function
	// that runs it with the positional arguments left after the flags.
	setup func(fs *flag.FlagSet) func(ctx context.Context, a *app, args []string) error
}

// app is one invocation: where output goes and the global flags.
type app struct {
	stdout, stderr io.Writer
	// file is -f: the manifest; empty when not given.
	file string
	// project is -p: the stack's name; empty when not given.
	project  string
	commands []*command
}

// run runs the command line args and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr, commands: commands()}
	if err := a.main(ctx, args); err != nil {
		return a.report(err)
	}
	return 0
}

func (a *app) main(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("stack", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.file, "f", "", "")
	fs.StringVar(&a.project, "p", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			a.usage(a.stdout)
			return nil
		}
		return usageError("run 'stack help' for the global flags", "%v", err)
	}
	if a.project != "" {
		if err := manifest.ValidateName(a.project); err != nil {
			return usageError("", "-p: %v", err)
		}
	}
	if fs.NArg() == 0 {
		a.usage(a.stderr)
		return usageError("", "no command given")
	}
	name, rest := fs.Arg(0), fs.Args()[1:]
	cmd := a.lookup(name)
	if cmd == nil {
		return usageError("run 'stack help' for the list of commands", "unknown command %q", name)
	}
	return a.runCommand(ctx, cmd, rest)
}

func (a *app) lookup(name string) *command {
	i := slices.IndexFunc(a.commands, func(c *command) bool { return c.name == name })
	if i < 0 {
		return nil
	}
	return a.commands[i]
}

// runCommand parses the command's flags, which may come before, between or
// after its positional arguments ("up stack.yaml -d"), and runs it.
func (a *app) runCommand(ctx context.Context, cmd *command, args []string) error {
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	runFn := cmd.setup(fs)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				a.commandHelp(a.stdout, cmd)
				return nil
			}
			return usageError(fmt.Sprintf("run 'stack help %s' for its usage", cmd.name), "%s: %v", cmd.name, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if cmd.flagsFirst {
			positional = append(positional, rest...)
			break
		}
		// Parse consumes a "--" and stops: everything after it is positional.
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	return runFn(ctx, a, positional)
}

// exitError carries the exit status an error ends stack with, and an
// optional hint printed after it.
type exitError struct {
	code int
	err  error
	hint string
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitStatus ends stack with a status and nothing printed: another
// program's own (stack exec), which said what it had to say itself.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// usageError is a mistake on the command line: exit status 2.
func usageError(hint, format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...), hint: hint}
}

// rootHint is the hint for an error that a non-root user gets from the
// state directory, cgroupfs or clone.
const rootHint = "stack needs root: it creates namespaces, cgroups and mounts (run it with sudo)"

// report prints err the way every stack error reads and returns the exit
// status: 2 for usage errors and invalid manifests, 1 for the rest.
func (a *app) report(err error) int {
	var status exitStatus
	if errors.As(err, &status) {
		return int(status)
	}
	code, hint := 1, ""
	var ee *exitError
	if errors.As(err, &ee) {
		code, hint = ee.code, ee.hint
	}
	// Decided here rather than by each verb: whichever step a non-root
	// user's run fails at (the state directory, a cgroup, clone), the
	// cure is the same. Root's EACCES is a different problem (a read-only
	// or foreign directory), which the error itself describes.
	if hint == "" && errors.Is(err, fs.ErrPermission) && os.Geteuid() != 0 {
		hint = rootHint
	}
	var me *manifest.Error
	if errors.As(err, &me) {
		code = 2
		noun := "problems"
		if len(me.Problems) == 1 {
			noun = "problem"
		}
		fmt.Fprintf(a.stderr, "stack: error: invalid manifest (%d %s):\n%v\n", len(me.Problems), noun, me)
	} else {
		fmt.Fprintf(a.stderr, "stack: error: %v\n", err)
	}
	if hint != "" {
		fmt.Fprintf(a.stderr, "hint: %s\n", hint)
	}
	return code
}

// manifestPath finds the manifest: -f, or the command's one positional
// argument, or ./stack.yaml, then ./stack.yml.
func (a *app) manifestPath(args []string) (string, error) {
	switch {
	case len(args) > 1:
		return "", usageError("", "too many arguments: %s", strings.Join(args[1:], " "))
	case len(args) == 1 && a.file != "":
		return "", usageError("give the manifest either with -f or as the argument", "the manifest is named twice: -f %s and %s", a.file, args[0])
	case len(args) == 1:
		return args[0], nil
	case a.file != "":
		return a.file, nil
	}
	for _, name := range []string{"stack.yaml", "stack.yml"} {
		if _, err := os.Stat(name); err == nil {
			return name, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("look for the manifest: %w", err)
		}
	}
	return "", usageError("name the manifest with -f FILE or as the command's argument", "no stack.yaml or stack.yml in the current directory")
}

// loadStack finds and loads the manifest; -p, when given, renames the
// stack as docker compose's -p does. A manifest that cannot be read or is
// invalid is exit status 2: nothing was started.
func (a *app) loadStack(args []string) (*manifest.Stack, error) {
	path, err := a.manifestPath(args)
	if err != nil {
		return nil, err
	}
	st, warnings, err := manifest.LoadWith(path, manifest.Options{Environ: os.Environ(), Home: invokerHome()})
	for _, w := range warnings {
		fmt.Fprintf(a.stderr, "stack: warning: %v\n", w)
	}
	if err != nil {
		var me *manifest.Error
		if errors.As(err, &me) {
			return nil, err
		}
		return nil, &exitError{code: 2, err: err}
	}
	if a.project != "" {
		st.Name = a.project
	}
	return st, nil
}
