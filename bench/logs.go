package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// A log line is a ten-digit sequence number, a space, a fixed payload and a
// newline: 100 bytes, the size of a typical log line.
const (
	logLineLen = 100
	seqDigits  = 10
)

// logDataSize is what each log-writing container writes: as much as a
// container's log keeps whole (the current file and logs.DefaultKeep
// rotated ones, logs.DefaultMaxSize each: 40 MiB) with a margin, so that
// every line is still there to check in `stack logs`, and any line missing
// is a line lost. The lines a read brings are one record, each line one
// byte longer there (its newline written \n): 32 MiB of lines take about
// 34 MB. Less data would time little more than the start of the cats.
// No product of the defaults makes 32 MiB: TestLogDataSizeFits checks it
// against them.
const logDataSize = 32 << 20

var logPayload = bytes.Repeat([]byte("stack-bench-log-payload/"), 4)[:logLineLen-seqDigits-2]

// writeLogData writes the numbered lines every log-writing container cats.
func writeLogData(path string, size int64) (lines int64, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, fmt.Errorf("make log data directory: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, fmt.Errorf("create log data: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	lines = size / logLineLen
	for i := range lines {
		fmt.Fprintf(w, "%0*d %s\n", seqDigits, i, logPayload)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, fmt.Errorf("write log data: %w", err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("write log data: %w", err)
	}
	return lines, nil
}

// logVerifier checks, from `stack logs` output, that each container's lines
// are all there, each once, whole and in order. Lines missing from the
// start only are told apart from lines lost in the middle: log rotation
// drops the oldest.
type logVerifier struct {
	want int64
	// next is the sequence number expected next, per container; first is
	// the first one seen (-1: none yet).
	next, first map[string]int64
	// other counts lines that are not data (the supervisor's events).
	other int
}

func newLogVerifier(names []string, want int64) *logVerifier {
	v := &logVerifier{want: want, next: map[string]int64{}, first: map[string]int64{}}
	for _, n := range names {
		v.first[n] = -1
	}
	return v
}

// line takes one line of `stack logs` output: "NAME | LINE", the name
// padded to the longest.
func (v *logVerifier) line(l []byte) error {
	name, text, ok := bytes.Cut(l, []byte(" | "))
	c := string(bytes.TrimSpace(name))
	first, known := v.first[c]
	if !ok || !known || len(text) < seqDigits+1 || text[seqDigits] != ' ' {
		v.other++
		return nil
	}
	seq, err := strconv.ParseInt(string(text[:seqDigits]), 10, 64)
	if err != nil {
		v.other++
		return nil
	}
	if !bytes.Equal(text[seqDigits+1:], logPayload) {
		return fmt.Errorf("container %s: line %d is damaged: %q", c, seq, text)
	}
	if first < 0 {
		v.first[c], v.next[c] = seq, seq
	}
	if seq != v.next[c] {
		return fmt.Errorf("container %s: line %d follows line %d", c, seq, v.next[c]-1)
	}
	v.next[c] = seq + 1
	return nil
}

// check reads a whole `stack logs` output and says what it found: "all
// lines present", or how many of the oldest are missing.
func (v *logVerifier) check(r io.Reader) (string, error) {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		if err := v.line(s.Bytes()); err != nil {
			return "", err
		}
	}
	if err := s.Err(); err != nil {
		return "", fmt.Errorf("read logs: %w", err)
	}
	var lost int64
	for c, first := range v.first {
		if first < 0 || v.next[c] != v.want {
			return "", fmt.Errorf("container %s: lines %d to %d of %d", c, first, v.next[c]-1, v.want)
		}
		lost += first
	}
	if lost > 0 {
		total := v.want * int64(len(v.first))
		return fmt.Sprintf("**%d of %d lines lost**, all the oldest (log rotation); the rest whole and in order", lost, total), nil
	}
	return allLines, nil
}

// allLines is the verdict of a log with no line lost.
const allLines = "all lines present"

// benchLogs measures stack's log throughput with 1 and 8 containers
// against cat of the same data, and verifies every line.
func (h *harness) benchLogs(ctx context.Context, res *results) {
	if h.stack == nil {
		res.problems = append(res.problems, "logs: not measured: stack is not available")
		return
	}
	data := filepath.Join(h.rootfs, "data", "lines")
	lines, err := writeLogData(data, h.cfg.logBytes)
	if err != nil {
		res.problems = append(res.problems, "logs: "+err.Error())
		return
	}
	defer os.RemoveAll(filepath.Dir(data))
	for _, n := range []int{1, 8} {
		r := logResult{containers: n, bytes: lines * logLineLen}
		var stackRates, nullRates, pipeRates []float64
		for round := range h.cfg.rounds {
			// The three take turns, rotated, like the start rows.
			for _, which := range rotate([]string{"stack", "null", "pipe"}, round) {
				if ctx.Err() != nil {
					return
				}
				settle(ctx)
				var d time.Duration
				var err error
				switch which {
				case "stack":
					var verdict string
					d, verdict, err = h.stackLogs(ctx, n, lines)
					if err == nil && (r.verified == "" || r.verified == allLines) {
						r.verified = verdict
					}
				case "null":
					d, err = catLogs(ctx, n, `cat "$1" > /dev/null`, data)
				case "pipe":
					d, err = catLogs(ctx, n, `cat "$1" | cat > /dev/null`, data)
				}
				if err != nil {
					r.err = fmt.Sprintf("%s: %v", which, err)
					progress("logs %d×%s %s: FAILED: %v", n, mib(r.bytes), which, err)
					continue
				}
				rate := float64(int64(n)*r.bytes) / 1e6 / d.Seconds()
				progress("logs %d×%s %s: %.0f MB/s", n, mib(r.bytes), which, rate)
				switch which {
				case "stack":
					stackRates = append(stackRates, rate)
				case "null":
					nullRates = append(nullRates, rate)
				case "pipe":
					pipeRates = append(pipeRates, rate)
				}
			}
		}
		r.stack, r.catNull, r.catPipe = median(stackRates), median(nullRates), median(pipeRates)
		res.logs = append(res.logs, r)
	}
}

// catLogs times n parallel shell pipelines over the data.
func catLogs(ctx context.Context, n int, script, data string) (time.Duration, error) {
	g, ctx := errgroup.WithContext(ctx)
	t0 := monotonic()
	for range n {
		g.Go(func() error {
			if out, err := exec.CommandContext(ctx, "/bin/sh", "-c", script, "cat", data).CombinedOutput(); err != nil {
				return fmt.Errorf("%s: %w: %s", script, err, out)
			}
			return nil
		})
	}
	err := g.Wait()
	return monotonic() - t0, err
}

// eventsCatchUp bounds the wait for process events that have already been
// sent: the socket holds a few tens of thousands of them at most, and the
// reader takes each in microseconds.
const eventsCatchUp = 30 * time.Second

// stackLogs runs a foreground `stack up` of n containers catting the data,
// output to /dev/null, times the containers from the first exec to the
// last exit, then checks `stack logs` and takes the stack down.
func (h *harness) stackLogs(ctx context.Context, n int, lines int64) (d time.Duration, verdict string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*opTimeout)
	defer cancel()
	// An empty file of a random name after the data makes the command
	// line the run's own, for the process events.
	end := "/data/end-" + sleepArgv()[1]
	if err := os.WriteFile(filepath.Join(h.rootfs, end), nil, 0o644); err != nil {
		return 0, "", fmt.Errorf("make end marker: %w", err)
	}
	defer os.Remove(filepath.Join(h.rootfs, end))
	b := h.newBatch(n, []string{"/bin/cat", "/data/lines", end})
	if err := h.stack.writeManifest(b, nil); err != nil {
		return 0, "", err
	}
	defer func() {
		down, cancel := teardown(ctx)
		defer cancel()
		if derr := h.stack.down(down, b); derr != nil && err == nil {
			err = fmt.Errorf("down: %w", derr)
		}
	}()
	t := newTracker(h.watcher, b.argv)
	defer t.stop()
	if err := runToNull(h.stack.cmd(ctx, b, "up")); err != nil {
		return 0, "", err
	}
	// Timed from the first container's exec to the last one's exit, by
	// the kernel's clock: what stack's start and teardown cost is the
	// start table's, not the logs'.
	//
	// `up` has returned, so every writer has ended: the kernel sent its
	// exec event when it started and its exit event as it ended, and the
	// reader takes them in well under eventsCatchUp. A writer still not
	// seen after that was missed (it ended before the reader could read
	// its command line), and waiting out the section's half hour would
	// not bring it.
	caughtUp, cancelCatchUp := context.WithTimeout(ctx, eventsCatchUp)
	defer cancelCatchUp()
	if err := t.until(caughtUp, "every writer to start and end", func() bool { return t.execs >= n && len(t.alive) == 0 }); err != nil {
		return 0, "", fmt.Errorf("after stack up returned: %w", err)
	}
	d = t.lastExit() - t.firstExec

	var names []string
	for i := range n {
		names = append(names, b.containerName(i))
	}
	cmd := h.stack.cmd(ctx, b, "logs")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, "", fmt.Errorf("stack logs: %w", err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return 0, "", fmt.Errorf("stack logs: %w", err)
	}
	verdict, verr := newLogVerifier(names, lines).check(out)
	if verr != nil {
		// Drain the rest so that logs can exit; the loss is the error.
		_, _ = io.Copy(io.Discard, out)
	}
	if err := cmd.Wait(); err != nil {
		return 0, "", fmt.Errorf("stack logs: %w: %s", err, stderr.String())
	}
	if verr != nil {
		return 0, "", fmt.Errorf("stack logs: %w", verr)
	}
	return d, verdict, nil
}
