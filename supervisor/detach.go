package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/stack-containers/stack/manifest"
)

// reportOK is what a background supervisor writes back once every
// container runs; anything else it writes is the start's error.
const reportOK = "ok\n"

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
		return fmt.Errorf("stack %q: create state directory: %w", st.Name, err)
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
	cmd.Env = append(os.Environ(), "STACK_STATE_DIR="+cfg.StateDir)
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
	report, rerr := io.ReadAll(repR)
	if string(report) == reportOK {
		// The supervisor lives on without us: nothing is left to wait for.
		return cmd.Process.Release()
	}
	exit := cmd.Wait()
	if msg := strings.TrimSpace(string(report)); msg != "" {
		return errors.New(msg)
	}
	return fmt.Errorf("stack %q: the supervisor ended before every container ran (%w); see %s",
		st.Name, errors.Join(exit, werr, cerr, rerr), paths.SupervisorLog())
}

// ServeDetached is the background supervisor that Detach starts: it reads
// the stack from config, runs it (see Run), reports to report, and
// supervises the stack until it ends or signals stop it.
func ServeDetached(ctx context.Context, cfg Config, config io.Reader, report io.WriteCloser, signals <-chan os.Signal) error {
	var st manifest.Stack
	if err := json.NewDecoder(config).Decode(&st); err != nil {
		err = fmt.Errorf("read the stack to supervise: %w", err)
		_, werr := io.WriteString(report, err.Error())
		return errors.Join(err, werr, report.Close())
	}
	var reportErr error
	err := Run(ctx, &st, cfg, signals, func(err error) {
		msg := reportOK
		if err != nil {
			msg = err.Error()
		}
		_, werr := io.WriteString(report, msg)
		reportErr = errors.Join(werr, report.Close())
	})
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
