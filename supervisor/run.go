package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/stack-containers/stack/manifest"
)

// Run starts the stack and supervises it until it ends, as `stack up` does
// in the foreground and the background supervisor of `up -d` does.
//
// The first value received on signals stops the stack gracefully (or, while
// it is still starting, abandons the start, which stops what was started);
// the next one ends the grace periods at once. started, if not nil, is
// called once: with nil when every container runs, or with the error that
// ended the start. Run returns the start's error, or Wait's; a start
// abandoned for a signal, and cleaned up, is a stop and returns nil, as a
// stop after the start does.
func Run(ctx context.Context, st *manifest.Stack, cfg Config, signals <-chan os.Signal, started func(error)) error {
	if started == nil {
		started = func(error) {}
	}
	startCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	type result struct {
		s   *Supervisor
		err error
	}
	res := make(chan result, 1)
	go func() {
		s, err := Start(startCtx, st, cfg)
		res <- result{s, err}
	}()
	received := 0
	var s *Supervisor
	for s == nil {
		select {
		case r := <-res:
			if r.err != nil {
				started(r.err)
				return stoppedDuringStart(r.err, cfg.Errors, st.Name)
			}
			s = r.s
		case sig := <-signals:
			received++
			cancel(stopRequest{signalText(sig)})
		}
	}
	started(nil)
	// A signal that came too late to abandon the start stops the stack.
	stopping := false
	onSignal := func() {
		if !stopping {
			stopping = true
			// Stop returns once every container has stopped; the loop
			// below keeps listening for the signal that kills.
			go s.Stop()
		}
		if received > 1 {
			s.Kill()
		}
	}
	if received > 0 {
		onSignal()
	}
	for {
		select {
		case <-s.Done():
			return s.Wait()
		case <-signals:
			received++
			onSignal()
		}
	}
}

// signalText names sig as a user knows it: SIGTERM rather than
// "terminated".
func signalText(sig os.Signal) string {
	if s, ok := sig.(syscall.Signal); ok {
		return signalName(int(s))
	}
	return sig.String()
}

// stopRequest is the cause of a start abandoned for a signal.
type stopRequest struct{ signal string }

func (r stopRequest) Error() string { return r.signal + " received" }

// stoppedDuringStart turns the error of a start that a signal abandoned,
// and whose cleanup succeeded, into nil, with a note of it on errs: the
// user asked for a stop, got one, and nothing is left. Any other error,
// a cleanup's failure included, passes unchanged.
func stoppedDuringStart(err error, errs io.Writer, stack string) error {
	var stop stopRequest
	if !errors.As(err, &stop) || errors.Is(err, errUncleanAbort) {
		return err
	}
	if errs == nil {
		errs = os.Stderr
	}
	fmt.Fprintf(errs, "stack: stack %q: %s during the start: stopped what had started\n", stack, stop.signal)
	return nil
}
