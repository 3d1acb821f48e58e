package stacktest

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"time"
)

// Background is a stack command left running while the test goes on.
type Background struct {
	// Process is the command's process, for the signals a user sends it
	// (SIGINT for Ctrl-C, SIGTERM, SIGKILL).
	Process *os.Process

	e      *Env
	args   []string
	ctx    context.Context
	start  time.Time
	stdout lockedBuffer
	stderr lockedBuffer
	done   chan struct{} // closed once the command has been waited for
	err    error         // from Wait, once done is closed
	took   time.Duration // once done is closed
}

// Start runs `stack args...` in Dir in the background. When the test ends,
// a command still running is killed (SIGKILL) and waited for, before the
// check that nothing is left.
func (e *Env) Start(args ...string) *Background {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	b := &Background{e: e, args: args, ctx: ctx, done: make(chan struct{})}
	cmd := e.Command(ctx, e.Dir, args...)
	cmd.Stdout, cmd.Stderr = &b.stdout, &b.stderr
	b.start = time.Now()
	if err := cmd.Start(); err != nil {
		cancel()
		e.t.Fatalf("stack %s: %v", strings.Join(args, " "), err)
	}
	b.Process = cmd.Process
	go func() {
		b.err = cmd.Wait()
		b.took = time.Since(b.start)
		close(b.done)
	}()
	e.t.Cleanup(func() {
		cancel()
		<-b.done
	})
	return b
}

// Lines returns the complete lines of stdout so far.
func (b *Background) Lines() []string {
	out := b.stdout.String()
	end := strings.LastIndexByte(out, '\n')
	if end < 0 {
		return nil
	}
	return strings.Split(out[:end], "\n")
}

// Done is closed once the command has ended, for a test that acts until
// then (Wait still says how it ended).
func (b *Background) Done() <-chan struct{} { return b.done }

// Wait waits for the command to end and returns how it ended; like Run, it
// fails the test if the command does not end by itself within the timeout.
func (b *Background) Wait() Result {
	b.e.t.Helper()
	<-b.done
	r := Result{Stdout: b.stdout.String(), Stderr: b.stderr.String(), Took: b.took}
	b.e.ended(b.ctx, b.args, b.err, &r)
	return r
}

// lockedBuffer is a buffer that the goroutine copying a command's output
// writes while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
