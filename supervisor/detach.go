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

	"github.com/stack-containers/stack/manifest"
)

// report is what a background supervisor writes back, as one JSON object,
// once every container runs (Error empty) or the start failed. An error
// loses its type on the way, so Kind names the sentinel it wrapped, if
// one that up -d acts on (a hint), and Detach wraps it again.
type report struct {
	Error string `json:"error,omitempty"`
	Kind  string `json:"kind,omitempty"`
}

// The kinds of error a report carries.
const (
	kindRunning    = "running"    // ErrRunning
	kindPermission = "permission" // fs.ErrPermission
)

func reportOf(err error) report {
	r := report{Error: err.Error()}
	switch {
	case errors.Is(err, ErrRunning):
		r.Kind = kindRunning
	case errors.Is(err, fs.ErrPermission):
		r.Kind = kindPermission
	}
	return r
}

// err is the error the report stands for, which reads as the supervisor's
// did and matches its kind with errors.Is.
func (r report) err() error {
	var kind error
	switch r.Kind {
	case kindRunning:
		kind = ErrRunning
	case kindPermission:
		kind = fs.ErrPermission
	}
	return &reportedError{msg: r.Error, kind: kind}
}

// reportedError is an error from the background supervisor.
type reportedError struct {
	msg  string
	kind error
}

func (e *reportedError) Error() string { return e.msg }
func (e *reportedError) Unwrap() error { return e.kind }

// Detach starts a background supervisor for st and returns once every
// container runs, or with the error that ended the start.
//
// The supervisor is the stack binary run again as argv (argv[0] and the
// hidden command that calls ServeDetached), in a session of its own so that
// the terminal's signals and hangup do not reach it, with its output
// appended to the stack's supervisor.log. The stack goes to it as JSON on
// a pipe (the first of ExtraFiles, fd 3) rather than by path, so it runs
// exactly what was validated here; its report comes back on a second pipe
// (fd 4), which it closes once it knows.
func Detach(st *manifest.Stack, cfg Config, argv []string) error {
	paths, err := PathsOf(cfg.StateDir, st.Name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(paths.Dir, 0o700); err != nil {
		return fmt.Errorf("stack %q: create state directory %s: %w", st.Name, paths.Dir, err)
	}
	logFile, err := os.OpenFile(paths.SupervisorLog(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("stack %q: open supervisor log: %w", st.Name, err)
	}
	defer logFile.Close()
	config, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("stack %q: encode for the supervisor: %w", st.Name, err)
	}
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("stack %q: supervisor pipe: %w", st.Name, err)
	}
	defer cfgW.Close()
	repR, repW, err := os.Pipe()
	if err != nil {
		cfgR.Close()
		return fmt.Errorf("stack %q: supervisor pipe: %w", st.Name, err)
	}
	defer repR.Close()

	cmd := exec.Command("/proc/self/exe", argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A background process keeps no directory busy (the user's may be
	// removed or unmounted); the state directory it needs is absolute.
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), "STACK_STATE_DIR="+cfg.StateDir, "STACK_DATA_DIR="+cfg.DataDir)
	cmd.ExtraFiles = []*os.File{cfgR, repW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	// Only the supervisor may hold these ends: with ours open, its report
	// pipe would never reach end of file should it die.
	cfgR.Close()
	repW.Close()
	if err != nil {
		return fmt.Errorf("stack %q: start the supervisor: %w", st.Name, err)
	}
	_, werr := cfgW.Write(config)
	cerr := cfgW.Close()
	var rep report
	// A supervisor that died before it reported leaves an empty pipe:
	// decoding fails and the error below says where to look.
	rerr := json.NewDecoder(repR).Decode(&rep)
	if rerr == nil && rep.Error == "" {
		// The supervisor lives on without us: nothing is left to wait for.
		return cmd.Process.Release()
	}
	exit := cmd.Wait()
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

// ServeDetached is the background supervisor that Detach starts: it reads
// the stack from config, runs it (see Run), writes its report to out and
// closes it, and supervises the stack until it ends or signals stop it.
func ServeDetached(ctx context.Context, cfg Config, config io.Reader, out io.WriteCloser, signals <-chan os.Signal) error {
	send := func(err error) error {
		var r report
		if err != nil {
			r = reportOf(err)
		}
		return errors.Join(json.NewEncoder(out).Encode(r), out.Close())
	}
	var st manifest.Stack
	if err := json.NewDecoder(config).Decode(&st); err != nil {
		err = fmt.Errorf("read the stack to supervise: %w", err)
		return errors.Join(err, send(err))
	}
	var reportErr error
	err := Run(ctx, &st, cfg, signals, func(err error) { reportErr = send(err) })
	if reportErr != nil {
		// up -d is gone (interrupted): the stack runs on regardless.
		fmt.Fprintf(cfg.errors(), "stack: warning: report to up -d: %v\n", reportErr)
	}
	return err
}

func (c Config) errors() io.Writer {
	if c.Errors == nil {
		return os.Stderr
	}
	return c.Errors
}
