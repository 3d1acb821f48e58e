package logs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lineWriter collects what a writer gets, for a test to read as it comes.
type lineWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // signalled on every write
}

func newLineWriter() *lineWriter { return &lineWriter{changed: make(chan struct{}, 1)} }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	select {
	case w.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

// lines returns the complete lines written so far.
func (w *lineWriter) lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.buf.String()
	s = s[:strings.LastIndexByte(s, '\n')+1]
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// waitFor waits until a complete line equal to want has been written.
func (w *lineWriter) waitFor(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(time.Minute) // only against a hang
	for !slices.Contains(w.lines(), want) {
		select {
		case <-w.changed:
		case <-timeout:
			t.Fatalf("%q never written; got %d lines", want, len(w.lines()))
		}
	}
}

// byContainer splits `NAME | TEXT` lines per container, checking that each
// is whole: a name, the separator, a text.
func byContainer(t *testing.T, lines []string, names []string) map[string][]string {
	t.Helper()
	got := map[string][]string{}
	for _, l := range lines {
		name, text, ok := strings.Cut(l, " | ")
		name = strings.TrimRight(name, " ")
		if !ok || !slices.Contains(names, name) {
			t.Fatalf("mangled line %q", l)
		}
		got[name] = append(got[name], text)
	}
	return got
}

// TestPipesIntoOneOutput writes numbered lines from five writers at once,
// through real pipes, into one aggregator: every line must arrive exactly
// once, whole and in order, in the output and in the files read back.
func TestPipesIntoOneOutput(t *testing.T) {
	checkLeaks(t)
	const writers, perWriter = 5, 2000
	dir := t.TempDir()
	var names []string
	for i := range writers {
		names = append(names, fmt.Sprintf("c%d", i))
	}
	out := newLineWriter()
	a := newAggregator(t, Config{Dirs: inDir(dir, names), Names: names, Output: out, MaxSize: 64 << 10, Keep: 100})
	captureThroughPipes(t, a, names, func(i int, name string, w io.Writer) {
		for j := range perWriter {
			text := fmt.Sprintf("%s line %05d %s", name, j, strings.Repeat("x", (i*j)%300))
			if j == perWriter-1 {
				io.WriteString(w, text) // the last one unterminated
				return
			}
			// Write some lines in two parts, so that reads end
			// inside lines.
			if j%7 == 0 {
				io.WriteString(w, text[:5])
				text = text[5:]
			}
			if _, err := io.WriteString(w, text+"\n"); err != nil {
				t.Errorf("%s: write: %v", name, err)
				return
			}
		}
	})

	check := func(what string, got map[string][]string) {
		t.Helper()
		for i, name := range names {
			lines := got[name]
			if len(lines) != perWriter {
				t.Errorf("%s: %s: %d lines, want %d", what, name, len(lines), perWriter)
				continue
			}
			for j, l := range lines {
				if want := fmt.Sprintf("%s line %05d %s", name, j, strings.Repeat("x", (i*j)%300)); l != want {
					t.Errorf("%s: %s: line %d is %q, want %q", what, name, j, l, want)
					break
				}
			}
		}
	}
	check("output", byContainer(t, out.lines(), names))

	var back bytes.Buffer
	if err := Print(context.Background(), &back, logDirs(t, dir), PrintOptions{Tail: TailAll, Timestamps: true}); err != nil {
		t.Fatal(err)
	}
	var last time.Time
	got := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSuffix(back.String(), "\n"), "\n") {
		name, rest, ok := strings.Cut(l, " | ")
		stamp, text, ok2 := strings.Cut(rest, " ")
		at, err := time.Parse(time.RFC3339Nano, stamp)
		if !ok || !ok2 || err != nil {
			t.Fatalf("read back: mangled line %q (%v)", l, err)
		}
		if at.Before(last) {
			t.Fatalf("read back: %q comes after a line of %v", l, last)
		}
		last = at
		got[name] = append(got[name], text)
	}
	check("read back", got)
}

// blockingWriter is a terminal that nobody reads: writes block until
// released.
type blockingWriter struct {
	release chan struct{}
	*lineWriter
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	return w.lineWriter.Write(p)
}

// TestSlowOutput checks that an output that does not keep up costs it
// lines, but not the file, and does not hold up the capture.
func TestSlowOutput(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	out := &blockingWriter{release: make(chan struct{}), lineWriter: newLineWriter()}
	a := newAggregator(t, Config{Dirs: inDir(dir, []string{"web"}), Names: []string{"web"}, Output: out, OutputBuffer: 4 << 10})
	web, _ := a.Container("web")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	web.Capture(Stdout, r)
	const n = 20000
	go func() {
		defer w.Close()
		for i := range n {
			fmt.Fprintf(w, "line %d\n", i)
		}
	}()
	// The output is blocked all along: the capture still ends.
	if err := web.Wait(); err != nil {
		t.Fatal(err)
	}
	recs := readFile(t, filepath.Join(dir, "web.log"))
	if len(recs) != n {
		t.Fatalf("file: %d records, want %d", len(recs), n)
	}
	for i, rec := range recs {
		if want := fmt.Sprintf("line %d", i); string(rec.Text) != want {
			t.Fatalf("file: record %d is %q, want %q", i, rec.Text, want)
		}
	}

	close(out.release)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	shown, dropped, next := 0, 0, 0
	for _, l := range out.lines() {
		var d int
		if _, err := fmt.Sscanf(l, "[stack] %d lines not shown here", &d); err == nil {
			dropped += d
			continue
		}
		var i int
		if _, err := fmt.Sscanf(l, "web | line %d", &i); err != nil || i < next {
			t.Fatalf("output: unexpected line %q after line %d", l, next-1)
		}
		next = i + 1
		shown++
	}
	if shown+dropped != n || dropped == 0 {
		t.Errorf("output: %d lines shown and %d reported dropped, want %d in all with some dropped", shown, dropped, n)
	}
	t.Logf("output shown %d lines, dropped %d", shown, dropped)
}

// TestFollow follows a log while it is written, rotated, and written by a
// second run of the container, until the stack is said to have ended.
func TestFollow(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	a := newAggregator(t, Config{Dirs: inDir(dir, []string{"web", "db"}), Names: []string{"web", "db"}, MaxSize: 1024, Keep: 3})
	web, _ := a.Container("web")
	db, _ := a.Container("db")
	db.Event("started")

	var ended atomic.Bool
	out := newLineWriter()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Print(ctx, out, logDirs(t, dir), PrintOptions{Tail: TailAll, Follow: true, Stopped: ended.Load, Poll: time.Millisecond})
	}()

	var want []string
	next := 0
	// batch writes 20 lines (about two files' worth) as one run's output
	// and, unless last, waits until the follower has printed them: it
	// never falls behind by more than the files kept.
	batch := func(last bool) {
		var b strings.Builder
		for range 20 {
			fmt.Fprintf(&b, "line %04d %s\n", next, strings.Repeat("y", 40))
			want = append(want, fmt.Sprintf("web | line %04d %s", next, strings.Repeat("y", 40)))
			next++
		}
		web.Capture(Stdout, strings.NewReader(b.String()))
		if err := web.Wait(); err != nil {
			t.Fatal(err)
		}
		if !last {
			out.waitFor(t, want[len(want)-1])
		}
	}
	for run := range 3 {
		web.Event("started")
		want = append(want, "web * started")
		for range 5 {
			batch(false)
		}
		web.Event("exited with status 1")
		web.Event("restarting in 100ms (attempt %d of 3)", run+1)
		want = append(want, "web * exited with status 1", fmt.Sprintf("web * restarting in 100ms (attempt %d of 3)", run+1))
	}
	batch(true)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	ended.Store(true)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Print did not return once the stack ended")
	}

	got := out.lines()
	if got[0] != "db  * started" {
		t.Errorf("first line %q, want db's start", got[0])
	}
	var webLines []string
	for _, l := range got[1:] {
		webLines = append(webLines, strings.Replace(l, "web  ", "web ", 1))
	}
	if !slices.Equal(webLines, want) {
		t.Errorf("followed %d lines of web, want %d", len(webLines), len(want))
		for i := range min(len(webLines), len(want)) {
			if webLines[i] != want[i] {
				t.Fatalf("line %d: %q, want %q", i, webLines[i], want[i])
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "web.log*"))
	t.Logf("followed %d lines across %d rotations (files left: %d)", len(got), next*52/1024, len(files))
}

// TestFollowStopsOnContext checks that a follower with no end in sight
// returns when its context ends.
func TestFollowStopsOnContext(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	writeLog(t, filepath.Join(dir, "web.log"), line{1, Stdout, "hello"})
	ctx, cancel := context.WithCancel(context.Background())
	out := newLineWriter()
	done := make(chan error, 1)
	go func() {
		done <- Print(ctx, out, logDirs(t, dir), PrintOptions{Tail: TailAll, Follow: true, Poll: time.Millisecond})
	}()
	out.waitFor(t, "web | hello")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Print did not return when its context ended")
	}
}

// captureThroughPipes captures one pipe per container of names into a,
// each written by write (the container's index and name, and the pipe)
// in a goroutine of its own, all at once; it returns once every writer
// has closed its pipe and a is closed.
func captureThroughPipes(t *testing.T, a *Aggregator, names []string, write func(i int, name string, w io.Writer)) {
	t.Helper()
	var wg sync.WaitGroup
	var readers []*os.File
	for i, name := range names {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		readers = append(readers, r)
		l, err := a.Container(name)
		if err != nil {
			t.Fatal(err)
		}
		l.Capture(Stdout, r)
		wg.Go(func() {
			defer w.Close()
			write(i, name, w)
		})
	}
	wg.Wait()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	for _, r := range readers {
		r.Close()
	}
}
