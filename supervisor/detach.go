package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/stack-containers/stack/internal/wireerror"
	"github.com/stack-containers/stack/manifest"
)

// report is what a background supervisor writes back, as one JSON object,
// once every container runs (Error empty) or the start failed. An error
// loses its type on the way, so Kind names the one of reportKinds it was,
// and up -d gets back an error that reads as the supervisor's and is that
// kind (package wireerror).
type report struct {
	Error string `json:"error,omitempty"`
	Kind  string `json:"kind,omitempty"`
}

// reportKinds are the errors that up -d acts on (a hint).
var reportKinds = wireerror.Kinds{
	{Name: "running", Err: ErrRunning},
	{Name: "permission", Err: fs.ErrPermission},
}

func reportOf(err error) report {
	return report{Error: err.Error(), Kind: reportKinds.Of(err)}
}

// err is the error the report stands for, which reads as the supervisor's
// did and matches its kind with errors.Is.
func (r report) err() error {
	return reportKinds.Error(r.Error, r.Kind)
}

// Background is a background supervisor's process, started before the
// stack it is to run is known (Spawn) so that its exec and the Go
// runtime's start overlap the reading and validation of the manifest. It
// waits for the stack on a pipe; Supervise sends it, Abandon ends the
// process instead.
//
// The process is the stack binary run again as argv (argv[0] and the
// hidden command that calls ServeDetached), in a session of its own so
// that the terminal's signals and hangup do not reach it. The stack goes
// to it as JSON on a pipe (the first of ExtraFiles, fd 3) rather than by
// path, so it runs exactly what was validated here; its report comes back
// on a second pipe (fd 4), which it closes once it knows. It finds its
// configuration in the environment it inherits, as up -d did, and opens
// the stack's supervisor.log itself once it knows the stack.
type Background struct {
	cmd        *exec.Cmd
	stack, rep *os.File
	// err is why the process could not be started, for Supervise to
	// report with the stack's name: an invalid manifest comes first.
	err error
}

// Spawn starts a background supervisor's process; see Background. A
// failure to start it is reported by Supervise.
func Spawn(argv []string) *Background {
	b := &Background{}
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		b.err = err
		return b
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		cfgR.Close()
		cfgW.Close()
		b.err = err
		return b
	}
	cmd := exec.Command("/proc/self/exe", argv[1:]...)
	cmd.Args[0] = argv[0]
	var spare *os.File
	cmd.ExtraFiles, spare = spareExtraFiles([]*os.File{cfgR, repW})
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	if spare != nil {
		spare.Close()
	}
	// Only the supervisor may hold these ends: with ours open, its report
	// pipe would never reach end of file should it die, nor its stack
	// pipe should we.
	cfgR.Close()
	repW.Close()
	if err != nil {
		cfgW.Close()
		repR.Close()
		b.err = err
		return b
	}
	b.cmd, b.stack, b.rep = cmd, cfgW, repR
	return b
}

// Abandon ends the process without a stack to run: it reads end of file
// and exits, and Abandon returns once it has, so that nothing of an up -d
// that failed outlives it.
func (b *Background) Abandon() {
	if b.cmd == nil {
		return
	}
	b.stack.Close()
	b.rep.Close()
	b.cmd.Wait()
}

// Detach starts a background supervisor for st and returns once every
// container runs, or with the error that ended the start.
func Detach(st *manifest.Stack, cfg Config, argv []string) error {
	return Spawn(argv).Supervise(st, cfg)
}

// Supervise sends st to the background supervisor and returns once every
// container runs, or with the error that ended the start.
func (b *Background) Supervise(st *manifest.Stack, cfg Config) error {
	if b.err != nil {
		return fmt.Errorf("stack %q: start the supervisor: %w", st.Name, b.err)
	}
	paths, err := PathsOf(cfg.StateDir, st.Name)
	if err != nil {
		b.Abandon()
		return err
	}
	config, err := json.Marshal(st)
	if err != nil {
		b.Abandon()
		return fmt.Errorf("stack %q: encode for the supervisor: %w", st.Name, err)
	}
	_, werr := b.stack.Write(config)
	cerr := b.stack.Close()
	var rep report
	// A supervisor that died before it reported leaves an empty pipe:
	// decoding fails and the error below says where to look.
	rerr := json.NewDecoder(b.rep).Decode(&rep)
	b.rep.Close()
	if rerr == nil && rep.Error == "" {
		// The supervisor lives on without us: nothing is left to wait for.
		return b.cmd.Process.Release()
	}
	exit := b.cmd.Wait()
	if rerr == nil {
		return rep.err()
	}
	// The empty report (rerr, io.EOF) only follows from how the supervisor
	// ended, which is the cause to give, on one line.
	cause := describeExit(exit)
	if err := errors.Join(werr, cerr); err != nil {
		cause = fmt.Sprintf("%s; sending it the stack: %v", cause, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return fmt.Errorf("stack %q: the supervisor ended before every container ran (%s); see %s",
		st.Name, cause, paths.SupervisorLog())
}

// describeExit says how a process that was waited for ended: "killed by
// SIGKILL", "exit status 1".
func describeExit(err error) string {
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		if err == nil {
			return "exit status 0"
		}
		return err.Error()
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by " + signalName(int(ws.Signal()))
	}
	return fmt.Sprintf("exit status %d", exit.ExitCode())
}

// ServeDetached is the background supervisor that Spawn starts: it reads
// the stack from config, asks setup for its configuration (which is where
// the process sends its output to the stack's supervisor.log, see
// OpenSupervisorLog), runs it (see Run), writes its report to out and
// closes it, and supervises the stack until it ends or signals stop it.
// A config that ends before a stack begins is an up -d that failed
// without one (Abandon): ServeDetached returns nil and reports nothing.
func ServeDetached(ctx context.Context, config io.Reader, out io.WriteCloser, signals <-chan os.Signal, setup func(*manifest.Stack) (Config, error)) error {
	closeSpareDescriptor()
	send := func(err error) error {
		var r report
		if err != nil {
			r = reportOf(err)
		}
		return errors.Join(json.NewEncoder(out).Encode(r), out.Close())
	}
	var st manifest.Stack
	if err := json.NewDecoder(config).Decode(&st); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		err = fmt.Errorf("read the stack to supervise: %w", err)
		return errors.Join(err, send(err))
	}
	cfg, err := setup(&st)
	if err != nil {
		return errors.Join(err, send(err))
	}
	var reportErr error
	err = Run(ctx, &st, cfg, signals, func(err error) { reportErr = send(err) })
	if reportErr != nil {
		// up -d is gone (interrupted): the stack runs on regardless.
		fmt.Fprintf(cfg.errors(), "stack: warning: report to up -d: %v\n", reportErr)
	}
	return err
}

// OpenSupervisorLog creates the stack's state directory and opens its
// supervisor.log for appending, where a background supervisor's own output
// goes.
func OpenSupervisorLog(cfg Config, stack string) (*os.File, error) {
	paths, err := PathsOf(cfg.StateDir, stack)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(paths.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("stack %q: create state directory %s: %w", stack, paths.Dir, err)
	}
	f, err := os.OpenFile(paths.SupervisorLog(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("stack %q: open supervisor log: %w", stack, err)
	}
	return f, nil
}

func (c Config) errors() io.Writer {
	if c.Errors == nil {
		return os.Stderr
	}
	return c.Errors
}
