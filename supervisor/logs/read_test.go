package logs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// line is a record to put in a log file by hand.
type line struct {
	sec    int // seconds after base
	stream Stream
	text   string
}

var base = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// writeLog writes records to a file, as the writer would.
func writeLog(t *testing.T, path string, lines ...line) {
	t.Helper()
	var b []byte
	for _, l := range lines {
		ts := appendTimeStream(nil, base.Add(time.Duration(l.sec)*time.Second), l.stream)
		b = appendRecord(b, ts, []byte(l.text), false)
	}
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

// writeLogAppend appends records to a file.
func writeLogAppend(t *testing.T, path string, lines ...line) {
	t.Helper()
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeLog(t, path, lines...)
	added, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(old, added...), 0o640); err != nil {
		t.Fatal(err)
	}
}

// logDirs maps every container with a log file in dir to dir, for
// Print.
func logDirs(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{}
	for _, e := range entries {
		if name, _, ok := strings.Cut(e.Name(), ".log"); ok {
			dirs[name] = dir
		}
	}
	return dirs
}

// inDir maps every name to dir, for Config.Dirs.
func inDir(dir string, names []string) map[string]string {
	dirs := make(map[string]string, len(names))
	for _, name := range names {
		dirs[name] = dir
	}
	return dirs
}

func printLogs(t *testing.T, dir string, opts PrintOptions) string {
	t.Helper()
	var out bytes.Buffer
	if err := Print(context.Background(), &out, logDirs(t, dir), opts); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestPrint(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	// web has rotated once; equal times across containers print in name
	// order (db before web), whatever order the files are read in.
	writeLog(t, filepath.Join(dir, "web.log.1"), line{1, Stdout, "w1"}, line{3, Stdout, "w3"})
	writeLog(t, filepath.Join(dir, "web.log"), line{3, Stderr, "w3b"}, line{5, Event, "exited with status 0"}, line{9, Stdout, "w9"})
	writeLog(t, filepath.Join(dir, "db.log"), line{0, Event, "started"}, line{3, Stdout, "d3"}, line{4, Stdout, "d4"}, line{7, Stdout, "d7"})
	writeLog(t, filepath.Join(dir, "idle.log"))

	tests := []struct {
		name string
		opts PrintOptions
		want string
	}{
		{"all merged", PrintOptions{Tail: TailAll}, `
db   * started
web  | w1
db   | d3
web  | w3
web  | w3b
db   | d4
web  * exited with status 0
db   | d7
web  | w9
`},
		{"tail per container", PrintOptions{Tail: 2}, `
db   | d4
web  * exited with status 0
db   | d7
web  | w9
`},
		{"tail reaching into the rotated file", PrintOptions{Tail: 4, Containers: []string{"web"}}, `
web | w3
web | w3b
web * exited with status 0
web | w9
`},
		{"tail beyond the start", PrintOptions{Tail: 100, Containers: []string{"web"}}, `
web | w1
web | w3
web | w3b
web * exited with status 0
web | w9
`},
		{"tail zero", PrintOptions{Tail: 0}, "\n"},
		{"one container, padded to itself", PrintOptions{Tail: TailAll, Containers: []string{"db"}}, `
db * started
db | d3
db | d4
db | d7
`},
		{"timestamps", PrintOptions{Tail: 1, Timestamps: true}, `
db   | 2026-05-01T12:00:07.000000000Z d7
web  | 2026-05-01T12:00:09.000000000Z w9
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := printLogs(t, dir, tt.opts)
			if want := strings.TrimPrefix(tt.want, "\n"); got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}

	// While web.log is being rotated, only web.log.1 may be there.
	rotating := t.TempDir()
	writeLog(t, filepath.Join(rotating, "web.log.1"), line{1, Stdout, "w1"})
	if got, want := printLogs(t, rotating, PrintOptions{Tail: TailAll}), "web | w1\n"; got != want {
		t.Errorf("mid-rotation: got %q, want %q", got, want)
	}

	// An unreadable record is reported after the rest, and what follows
	// it is passed over: a record cannot be told from text after it.
	torn := t.TempDir()
	writeLog(t, filepath.Join(torn, "web.log"), line{1, Stdout, "before"})
	f, err := os.OpenFile(filepath.Join(torn, "web.log"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"time":"2026-05-01T12:00:02Z","str` + "\n")
	f.Close()
	writeLogAppend(t, filepath.Join(torn, "web.log"), line{3, Stdout, "after"})
	var out bytes.Buffer
	err = Print(context.Background(), &out, logDirs(t, torn), PrintOptions{Tail: TailAll})
	if got, want := out.String(), "web | before\n"; got != want {
		t.Errorf("torn record: got %q, want %q", got, want)
	}
	if err == nil || !strings.Contains(err.Error(), "1 unreadable records") {
		t.Errorf("torn record: got error %v, want one reported", err)
	}

	out.Reset()
	err = Print(context.Background(), &out, logDirs(t, dir), PrintOptions{Containers: []string{"nope"}})
	if err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown container: got error %v", err)
	}
	// A container whose directory is missing has no log; one that
	// cannot be read is an error.
	err = Print(context.Background(), &out, map[string]string{"web": filepath.Join(dir, "missing")}, PrintOptions{Containers: []string{"web"}})
	if err == nil || !strings.Contains(err.Error(), `"web": no such container with a log`) {
		t.Errorf("missing directory: got error %v", err)
	}
	err = Print(context.Background(), &out, map[string]string{"web": filepath.Join(dir, "web.log")}, PrintOptions{})
	if err == nil || !strings.Contains(err.Error(), "read logs") {
		t.Errorf("a file for a directory: got error %v", err)
	}
}

// TestFollowAfterRemoval follows a log whose files are all removed (a down
// while logs -f runs): the reader must give the loop back, so that it sees
// its context end, instead of moving on to a successor forever.
func TestFollowAfterRemoval(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "web.log")
	writeLog(t, path, line{1, Stdout, "w1"})
	out, cancel, done := follow(t, dir, nil)
	defer cancel()
	waitForOutput(t, out, "web | w1\n")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	// A few polls on the removed file, then the end of the context.
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Print went on after its context ended: the reader never returned to the loop")
	}
}

// lockedWriter is a buffer that Print writes while the test reads it.
type lockedWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestTailInsideRecord counts lines, not records, back from the end: a
// tail can start inside a record, and text that reads like a head or an
// escape is only text.
func TestTailInsideRecord(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	fake := string(appendRecord(nil, appendTimeStream(nil, base, Event), []byte("forged"), false))
	writeLog(t, filepath.Join(dir, "web.log"), line{1, Stdout, "a\nb"}, line{2, Stdout, `c\n` + "\n" + fake + "e"}, line{3, Event, "exited"})
	fakeOut := "web | " + strings.ReplaceAll(strings.TrimSuffix(fake, "\n"), "\n", "\nweb | ") + "\n"
	for _, tt := range []struct {
		tail int
		want string
	}{
		{1, "web * exited\n"},
		{2, "web | e\nweb * exited\n"},
		{5, "web | c\\n\n" + fakeOut + "web | e\nweb * exited\n"},
		{6, "web | b\nweb | c\\n\n" + fakeOut + "web | e\nweb * exited\n"},
		{TailAll, "web | a\nweb | b\nweb | c\\n\n" + fakeOut + "web | e\nweb * exited\n"},
	} {
		if got := printLogs(t, dir, PrintOptions{Tail: tt.tail}); got != tt.want {
			t.Errorf("-n %d: got %q, want %q", tt.tail, got, tt.want)
		}
	}
}

// TestCountLines counts records whose texts are longer than countLines'
// buffer, and stops at the first that is not whole.
func TestCountLines(t *testing.T) {
	ts := appendTimeStream(nil, base, Stdout)
	rec := func(text string) string { return string(appendRecord(nil, ts, []byte(text), false)) }
	long := strings.Repeat(strings.Repeat("x", 99)+"\n", 3000) + "end" // 3001 lines, 300 KB
	for _, tt := range []struct {
		name, file string
		want       int
	}{
		{"empty", "", 0},
		{"one line", rec("a"), 1},
		{"records of several lines", rec("a\nb") + rec("\n\n") + rec("c"), 6},
		{"text longer than the buffer", rec("a") + rec(long) + rec("b"), 3003},
		{"torn text at the end", rec("a") + rec(long)[:100<<10], 1},
		{"torn head at the end", rec("a") + rec("b")[:20], 1},
		{"a record's newline missing", rec("a") + strings.TrimSuffix(rec("b\nc"), "\n") + "x" + rec("d"), 1},
		{"not a record", rec("a") + "hello\n" + rec("b"), 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			if err := os.WriteFile(path, []byte(tt.file), 0o640); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if got, err := countLines(f); err != nil || got != tt.want {
				t.Errorf("countLines = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

// TestUnreadablePassesOverTheRest damages a record in the middle of a
// file: what comes before it is printed, what comes after is passed over
// and reported, even when it holds what reads like records.
func TestUnreadablePassesOverTheRest(t *testing.T) {
	checkLeaks(t)
	ts := appendTimeStream(nil, base, Stdout)
	rec := func(text string) []byte { return appendRecord(nil, ts, []byte(text), false) }
	for _, tt := range []struct {
		name string
		bad  []byte
	}{
		{"a head that is not one", []byte("{\"time\":\"yesterday\"}\n")},
		{"a text longer than its head says", append(bytes.TrimSuffix(rec("two"), newline), "!\n"...)},
		{"a line too long for a head", []byte(strings.Repeat("x", 100<<10) + "\n")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := slices.Concat(rec("one"), tt.bad, rec("three"))
			if err := os.WriteFile(filepath.Join(dir, "web.log"), file, 0o640); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			err := Print(context.Background(), &out, logDirs(t, dir), PrintOptions{Tail: TailAll})
			if out.String() != "web | one\n" {
				t.Errorf("printed %q, want only the record before the damage", out.String())
			}
			if err == nil || !strings.Contains(err.Error(), "1 unreadable records passed over") || !strings.Contains(err.Error(), "the rest of the file is passed over") {
				t.Errorf("Print: %v, want the damage reported", err)
			}
		})
	}
}

// TestFollowWaitsForWholeRecord appends a record in pieces, as a reader
// may see a long write in progress: a follower prints it once it is
// whole, and never a piece of it.
func TestFollowWaitsForWholeRecord(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "web.log")
	writeLog(t, path, line{1, Stdout, "first"})
	rec := appendRecord(nil, appendTimeStream(nil, base.Add(2*time.Second), Stdout), []byte("second\nthird"), false)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stopped atomic.Bool
	w, cancel, done := follow(t, dir, stopped.Load)
	defer cancel()
	waitForOutput(t, w, "web | first\n")
	for _, piece := range [][]byte{rec[:10], rec[10 : len(rec)-8], rec[len(rec)-8 : len(rec)-1]} {
		if _, err := f.Write(piece); err != nil {
			t.Fatal(err)
		}
		// Rounds of the follower pass over the piece in the file.
		time.Sleep(20 * time.Millisecond)
		if got := w.String(); got != "web | first\n" {
			t.Fatalf("with %d bytes of the record written, printed %q", len(piece), got)
		}
	}
	if _, err := f.Write(rec[len(rec)-1:]); err != nil {
		t.Fatal(err)
	}
	waitForOutput(t, w, "web | first\nweb | second\nweb | third\n")
	stopped.Store(true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestDirectoryOfItsOwn gives each container its own directory, as the
// supervisor does: New makes each (not their parent), each file lands in
// its container's, and Print merges them back; a name without a directory
// fails New.
func TestDirectoryOfItsOwn(t *testing.T) {
	checkLeaks(t)
	parent := t.TempDir()
	dirs := map[string]string{"web": filepath.Join(parent, "web.1a"), "db": filepath.Join(parent, "db.2b")}
	a := newAggregator(t, Config{Dirs: dirs, Names: []string{"web", "db"}})
	for _, name := range []string{"web", "db"} {
		l, err := a.Container(name)
		if err != nil {
			t.Fatal(err)
		}
		l.Capture(Stdout, strings.NewReader("hello from "+name+"\n"))
		if err := l.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	for name, dir := range dirs {
		if recs := readFile(t, filepath.Join(dir, name+".log")); len(recs) != 1 || string(recs[0].Text) != "hello from "+name {
			t.Errorf("%s: got %+v, want its one line", name, recs)
		}
	}
	var out bytes.Buffer
	if err := Print(context.Background(), &out, dirs, PrintOptions{Tail: TailAll}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"web | hello from web\n", "db  | hello from db\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("Print: got %q, want %q in it", out.String(), want)
		}
	}

	if _, err := New(Config{Dirs: map[string]string{"web": parent}, Names: []string{"web", "db"}}); err == nil || !strings.Contains(err.Error(), `"db": no directory`) {
		t.Errorf("New without db's directory: %v, want an error naming db", err)
	}
	if _, err := New(Config{Dirs: map[string]string{"web": filepath.Join(parent, "missing", "web.3c")}, Names: []string{"web"}}); err == nil || !strings.Contains(err.Error(), `"web"`) {
		t.Errorf("New under a missing parent: %v, want an error naming web", err)
	}
}

// waitForOutput waits until w holds exactly want.
func waitForOutput(t *testing.T, w *lockedWriter, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // only against a hang
	for w.String() != want {
		if time.Now().After(deadline) {
			t.Fatalf("printed %q, want %q", w.String(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// follow starts Print following the logs of dir, polling every
// millisecond, and returns what it prints, the end of its context and
// its result.
func follow(t *testing.T, dir string, stopped func() bool) (*lockedWriter, context.CancelFunc, <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &lockedWriter{}
	done := make(chan error, 1)
	dirs := logDirs(t, dir)
	go func() {
		done <- Print(ctx, out, dirs, PrintOptions{Tail: TailAll, Follow: true, Poll: time.Millisecond, Stopped: stopped})
	}()
	return out, cancel, done
}
