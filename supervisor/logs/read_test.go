package logs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
		head := appendRecordHead(nil, base.Add(time.Duration(l.sec)*time.Second), l.stream)
		b = appendRecord(b, head, []byte(l.text), false)
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

	// An unreadable record is passed over and reported after the rest.
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
	if got, want := out.String(), "web | before\nweb | after\n"; got != want {
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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &lockedWriter{}
	done := make(chan error, 1)
	go func() {
		done <- Print(ctx, out, logDirs(t, dir), PrintOptions{Tail: TailAll, Follow: true, Poll: time.Millisecond})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "w1") {
		if time.Now().After(deadline) {
			t.Fatalf("the first line was not printed: %q", out.String())
		}
		time.Sleep(time.Millisecond)
	}
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
// tail can start inside a record, and an escaped backslash before an n is
// no newline.
func TestTailInsideRecord(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	writeLog(t, filepath.Join(dir, "web.log"), line{1, Stdout, "a\nb"}, line{2, Stdout, `c\n` + "\nd\ne"}, line{3, Event, "exited"})
	for _, tt := range []struct {
		tail int
		want string
	}{
		{1, "web * exited\n"},
		{2, "web | e\nweb * exited\n"},
		{4, "web | c\\n\nweb | d\nweb | e\nweb * exited\n"},
		{5, "web | b\nweb | c\\n\nweb | d\nweb | e\nweb * exited\n"},
		{TailAll, "web | a\nweb | b\nweb | c\\n\nweb | d\nweb | e\nweb * exited\n"},
	} {
		if got := printLogs(t, dir, PrintOptions{Tail: tt.tail}); got != tt.want {
			t.Errorf("-n %d: got %q, want %q", tt.tail, got, tt.want)
		}
	}
}

// TestCountLines puts an escape across the boundary of countLines' reads.
func TestCountLines(t *testing.T) {
	const chunk = 64 << 10
	x := func(n int) string { return strings.Repeat("x", n) }
	for _, tt := range []struct {
		name, text string
		want       int
	}{
		{"newline escape cut after its backslash", x(chunk-1) + `\n` + "\n", 2},
		{"escaped backslash, then n", x(chunk-2) + `\\n` + "\n", 1},
		{"escaped backslash cut in two, then n", x(chunk-1) + `\\n` + "\n", 1},
		{"quote escape cut", x(chunk-1) + `\"` + "\n", 1},
		{"two records", "a\\nb\nc\n", 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			if err := os.WriteFile(path, []byte(tt.text), 0o640); err != nil {
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
		if recs := readFile(t, filepath.Join(dir, name+".log")); len(recs) != 1 || recs[0].Log != "hello from "+name {
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
