package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stack-containers/stack/internal/testenv"
)

// readFile returns the lines of one log file, a record for each, whether
// the writer put them one per record or several in one. It reads the
// file strictly: every byte must belong to a whole record.
func readFile(t *testing.T, path string) []record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []record
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			t.Fatalf("%s: record %d: a head without its newline: %q", path, len(recs)+1, b)
		}
		h, err := parseHead(b[:i+1])
		if err != nil {
			t.Fatalf("%s: record %d: %v: %q", path, len(recs)+1, err, b[:i+1])
		}
		b = b[i+1:]
		if len(b) < h.size+1 || b[h.size] != '\n' {
			t.Fatalf("%s: record %d: no text of %d bytes and a newline: %q", path, len(recs)+1, h.size, b)
		}
		r := record{Time: h.time, Stream: h.stream, Text: b[:h.size], Partial: h.partial}
		b = b[h.size+1:]
		for text, partial := range r.lines() {
			line := r
			line.Text, line.Partial = text, partial
			recs = append(recs, line)
		}
	}
	return recs
}

// checkLeaks fails t if, once it has ended, more goroutines run or more
// files are open than when it began. Call it first, so that its check
// runs after every other cleanup.
func checkLeaks(t *testing.T) {
	t.Helper()
	goroutines, fds := runtime.NumGoroutine(), testenv.OpenFiles(t)
	t.Cleanup(func() {
		// Goroutines that have been told to end take a moment to go.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			g, f := runtime.NumGoroutine(), testenv.OpenFiles(t)
			if g <= goroutines && f <= fds {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("left behind: %d goroutines (began with %d), %d open files (began with %d)", g, goroutines, f, fds)
				return
			}
		}
	})
}

func newAggregator(t *testing.T, cfg Config) *Aggregator {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestCaptureAndEvents(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	var out bytes.Buffer
	a := newAggregator(t, Config{Dirs: inDir(dir, []string{"web", "database"}), Names: []string{"web", "database"}, Output: &out})
	web, err := a.Container("web")
	if err != nil {
		t.Fatal(err)
	}
	web.Event("started")
	web.Capture(Stdout, strings.NewReader("hello\n\x00bin\xff\nlast"))
	if err := web.Wait(); err != nil {
		t.Fatal(err)
	}
	web.Capture(Stderr, strings.NewReader("oops \"quoted\" \\ \t\r\n"))
	if err := web.Wait(); err != nil {
		t.Fatal(err)
	}
	web.Event("exited with status %d", 1)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	want := []record{
		{Stream: Event, Text: []byte("started")},
		{Stream: Stdout, Text: []byte("hello")},
		{Stream: Stdout, Text: []byte("\x00bin\xff")},
		{Stream: Stdout, Text: []byte("last"), Partial: true},
		{Stream: Stderr, Text: []byte("oops \"quoted\" \\ \t\r")},
		{Stream: Event, Text: []byte("exited with status 1")},
	}
	got := readFile(t, filepath.Join(dir, "web.log"))
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if !sameLine(g, w) {
			t.Errorf("record %d: got %+v, want %+v", i, g, w)
		}
		if i > 0 && g.Time.Before(got[i-1].Time) {
			t.Errorf("record %d: time %v before the previous %v", i, g.Time, got[i-1].Time)
		}
	}
	if recs := readFile(t, filepath.Join(dir, "database.log")); len(recs) != 0 {
		t.Errorf("database.log: got %d records, want none", len(recs))
	}

	wantOut := "web      * started\n" +
		"web      | hello\n" +
		"web      | \x00bin\xff\n" +
		"web      | last\n" +
		"web      | oops \"quoted\" \\ \t\r\n" +
		"web      * exited with status 1\n"
	if out.String() != wantOut {
		t.Errorf("output:\n%q\nwant:\n%q", out.String(), wantOut)
	}
}

func TestRotation(t *testing.T) {
	const maxSize = 4096
	const n = 1000
	dir, a, web, in := numberedLog(t, maxSize, n)
	// Reads of 100 bytes make many batches, so rotation falls inside them
	// as well as between them.
	web.Capture(Stdout, iotest.HalfReader(&chunkReader{r: strings.NewReader(in), n: 100}))
	huge := strings.Repeat("h", 2*maxSize)
	if err := web.Wait(); err != nil {
		t.Fatal(err)
	}
	web.Capture(Stderr, strings.NewReader(huge+"\nafter\n"))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	if _, err := os.Stat(filepath.Join(dir, "web.log.3")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("web.log.3: want none kept beyond Keep=2, stat says %v", err)
	}
	var all []record
	for _, name := range []string{"web.log.2", "web.log.1", "web.log"} {
		path := filepath.Join(dir, name)
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		recs := readFile(t, path)
		// Only a file holding a single line may exceed the cap.
		if st.Size() > maxSize && len(recs) != 1 {
			t.Errorf("%s: %d bytes in %d lines, over the cap of %d", name, st.Size(), len(recs), maxSize)
		}
		all = append(all, recs...)
	}
	// The kept files hold the newest records, contiguous and in order.
	if len(all) < 3 {
		t.Fatalf("only %d records kept", len(all))
	}
	if got := string(all[len(all)-2].Text); got != huge {
		t.Errorf("second to last record has %d bytes, want the huge line of %d", len(got), len(huge))
	}
	if got := string(all[len(all)-1].Text); got != "after" {
		t.Errorf("last record %q, want after", got)
	}
	numbered := all[:len(all)-2]
	first, err := strconv.Atoi(strings.TrimPrefix(string(numbered[0].Text), "line "))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range numbered {
		if want := fmt.Sprintf("line %04d", first+i); string(r.Text) != want {
			t.Fatalf("record %d: %q, want %q", i, r.Text, want)
		}
	}
	if last := first + len(numbered) - 1; last != n-1 {
		t.Errorf("last numbered line %d, want %d", last, n-1)
	}
	t.Logf("kept lines %d..%d of %d", first, n-1, n)
}

// numberedLog opens the log of container web in files of maxSize bytes,
// two rotated ones kept, and makes the n lines `line 0000` on to write
// to it.
func numberedLog(t *testing.T, maxSize int64, n int) (dir string, a *Aggregator, web *Log, in string) {
	t.Helper()
	checkLeaks(t)
	dir = t.TempDir()
	a = newAggregator(t, Config{Dirs: inDir(dir, []string{"web"}), Names: []string{"web"}, MaxSize: maxSize, Keep: 2})
	web, _ = a.Container("web")
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "line %04d\n", i)
	}
	return dir, a, web, b.String()
}

// TestRotationInsideRun writes one read of lines larger than a file: its
// run must be cut at a newline, the first file filled to within one line's
// record of maxSize and the rest in the next, not a line per file.
func TestRotationInsideRun(t *testing.T) {
	const maxSize = 4096
	const n = 600 // 6000 bytes: one read, one run, more than a file takes
	dir, a, web, in := numberedLog(t, maxSize, n)
	web.Capture(Stdout, strings.NewReader(in))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	if _, err := os.Stat(filepath.Join(dir, "web.log.2")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("web.log.2: want the run in two files, stat says %v", err)
	}
	// The longest record of one line that the file could not take.
	line := recordLen(appendTimeStream(nil, time.Now(), Stdout), len("line 0000"), false)
	if st, err := os.Stat(filepath.Join(dir, "web.log.1")); err != nil {
		t.Fatal(err)
	} else if st.Size() > maxSize || st.Size() <= maxSize-int64(line) {
		t.Errorf("web.log.1: %d bytes, want within %d (one line's record) of %d", st.Size(), line, maxSize)
	}
	var got []string
	for _, name := range []string{"web.log.1", "web.log"} {
		for _, r := range readFile(t, filepath.Join(dir, name)) {
			for text, partial := range r.lines() {
				if partial {
					t.Errorf("%s: partial line %q", name, text)
				}
				got = append(got, string(text))
			}
		}
	}
	if len(got) != n {
		t.Fatalf("%d lines kept, want %d", len(got), n)
	}
	for i, l := range got {
		if want := fmt.Sprintf("line %04d", i); l != want {
			t.Fatalf("line %d: %q, want %q", i, l, want)
		}
	}
}

// chunkReader returns at most n bytes per read.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// TestFullDisk writes to a log that fails every write (ENOSPC, by way of
// /dev/full): the stream is still drained and shown, and the loss is
// reported once, with a count.
func TestFullDisk(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	if err := os.Symlink("/dev/full", filepath.Join(dir, "web.log")); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	a := newAggregator(t, Config{Dirs: inDir(dir, []string{"web"}), Names: []string{"web"}, Output: &out})
	web, _ := a.Container("web")
	const n = 100
	web.Capture(Stdout, strings.NewReader(strings.Repeat("x\n", n)))
	err := web.Wait()
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), fmt.Sprintf("%d lines lost", n)) {
		t.Errorf("Wait: got %v, want %d lines lost to ENOSPC", err, n)
	}
	web.Event("exited with status 0")
	err = a.Close()
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "1 lines lost") {
		t.Errorf("Close: got %v, want the event lost to ENOSPC", err)
	}
	if got := strings.Count(out.String(), "web | x\n"); got != n {
		t.Errorf("output: %d lines, want %d", got, n)
	}
}

// TestFullDiskSaysSoAtOnce: lines that cannot be written are said to be
// lost as it happens, once, in the output and to Config.Warn, not only in
// the error at the end.
func TestFullDiskSaysSoAtOnce(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	if err := os.Symlink("/dev/full", filepath.Join(dir, "web.log")); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var warnings []error
	a := newAggregator(t, Config{Dirs: inDir(dir, []string{"web"}), Names: []string{"web"}, Output: &out, Warn: func(err error) { warnings = append(warnings, err) }})
	web, _ := a.Container("web")
	web.Capture(Stdout, strings.NewReader(strings.Repeat("x\n", 50)))
	web.Wait()
	web.Event("exited with status 0")
	a.Close()
	if len(warnings) != 1 || !strings.Contains(warnings[0].Error(), "no space left on device") {
		t.Errorf("warnings: %v, want one, saying the disk is full", warnings)
	}
	if got := strings.Count(out.String(), "web * log file cannot be written"); got != 1 {
		t.Errorf("output says the lines are lost %d times, want once:\n%s", got, out.String())
	}
}

// TestRecordPerRead checks that the lines one read brings are one record,
// whatever bytes they hold.
func TestRecordPerRead(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	a := newAggregator(t, Config{Dirs: inDir(dir, []string{"web"}), Names: []string{"web"}})
	web, _ := a.Container("web")
	web.Capture(Stdout, strings.NewReader("one\ntwo \"2\" \\n\n\nthree\n"))
	if err := web.Wait(); err != nil {
		t.Fatal(err)
	}
	web.Capture(Stderr, strings.NewReader("x\n\xffy\nz\nw\n"))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "web.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(raw, []byte(`{"time":`)); n != 2 {
		t.Errorf("%d records, want 2 (one for each read):\n%s", n, raw)
	}
	want := []record{
		{Stream: Stdout, Text: []byte("one")},
		{Stream: Stdout, Text: []byte(`two "2" \n`)},
		{Stream: Stdout, Text: []byte("")},
		{Stream: Stdout, Text: []byte("three")},
		{Stream: Stderr, Text: []byte("x")},
		{Stream: Stderr, Text: []byte("\xffy")},
		{Stream: Stderr, Text: []byte("z")},
		{Stream: Stderr, Text: []byte("w")},
	}
	if got := readFile(t, filepath.Join(dir, "web.log")); !slices.EqualFunc(got, want, sameLine) {
		t.Errorf("got lines %+v, want %+v", got, want)
	}
}

// sameLine compares what two records say, their times aside.
func sameLine(a, b record) bool {
	return a.Stream == b.Stream && bytes.Equal(a.Text, b.Text) && a.Partial == b.Partial
}

// gateReader yields r in reads of at most n bytes; once r is drained it
// closes drained and blocks until release is closed, then ends.
type gateReader struct {
	r        io.Reader
	n        int
	drained  chan struct{}
	release  chan struct{}
	signaled bool
}

func (g *gateReader) Read(p []byte) (int, error) {
	n, err := g.r.Read(p[:min(len(p), g.n)])
	if err == io.EOF && !g.signaled {
		g.signaled = true
		close(g.drained)
		<-g.release
	}
	return n, err
}

// allocated is how many bytes of disk the file at path has.
func allocated(t *testing.T, path string) (size, blocks int64) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Size, st.Blocks * 512
}

// canReserve reports whether the file system of dir takes
// fallocate(FALLOC_FL_KEEP_SIZE).
func canReserve(t *testing.T, dir string) bool {
	t.Helper()
	f, err := os.CreateTemp(dir, "probe")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	return syscall.Fallocate(int(f.Fd()), 1 /* FALLOC_FL_KEEP_SIZE */, 0, 1<<20) == nil
}

// TestReserveAndTrim: a busy stream's file is given space past its end
// while it is written, its size stays what was written, and the space is
// given back when the file is rotated and when it is closed; the records
// are the same as without it.
func TestReserveAndTrim(t *testing.T) {
	const maxSize = 1 << 20
	dir, a, web, _ := numberedLog(t, maxSize, 0)
	var b strings.Builder
	for i := 0; b.Len() < 5*maxSize/2; i++ {
		fmt.Fprintf(&b, "line %07d %s\n", i, strings.Repeat("x", 80))
	}
	in := b.String()
	g := &gateReader{r: strings.NewReader(in), n: 128 << 10, drained: make(chan struct{}), release: make(chan struct{})}
	web.Capture(Stdout, g)
	<-g.drained
	// Every read but the last has been written, and nothing since.
	current := filepath.Join(dir, "web.log")
	size, blocks := allocated(t, current)
	if size == 0 {
		t.Fatal("nothing written to web.log")
	}
	if round := (size + 4095) &^ 4095; canReserve(t, dir) && blocks <= round {
		t.Errorf("web.log while written: %d bytes of disk for %d bytes, want space reserved past the end", blocks, size)
	}
	close(g.release)
	if err := web.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	for _, name := range []string{"web.log.2", "web.log.1", "web.log"} {
		path := filepath.Join(dir, name)
		size, blocks := allocated(t, path)
		if round := (size + 4095) &^ 4095; blocks > round {
			t.Errorf("%s after close: %d bytes of disk for %d bytes, want no more than %d", name, blocks, size, round)
		}
		for _, r := range readFile(t, path) {
			got.WriteString(string(r.Text) + "\n")
		}
	}
	if got.String() != in {
		t.Errorf("the files hold %d bytes of lines, want the %d written", got.Len(), len(in))
	}
}

// TestWriteGivesWholeRuns checks when write hands a read's buffer to the
// output as it is: for a single run of whole lines filling at least half
// the buffer, not for a shorter one, one followed by a piece of a long
// line, or a stream without output; that the splitter is in another
// buffer by the time write returns; and that the output shows each
// exactly as the copy would.
func TestWriteGivesWholeRuns(t *testing.T) {
	checkLeaks(t)
	w := newLineWriter()
	a := newAggregator(t, Config{Dirs: inDir(t.TempDir(), []string{"web", "db"}), Names: []string{"web", "db"}, Output: w})
	web, _ := a.Container("web")
	db, _ := a.Container("db")
	quiet := newAggregator(t, Config{Dirs: inDir(t.TempDir(), []string{"web"}), Names: []string{"web"}})
	alone, _ := quiet.Container("web")
	lines := func(n, width int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "%05d %s\n", i, strings.Repeat("x", width))
		}
		return b.String()
	}
	const max = 4096 // the longest piece, for the case with pieces
	long := strings.Repeat("L", max+10)
	var want strings.Builder
	for _, c := range []struct {
		name string
		l    *Log
		in   string
		give bool
	}{
		{"a whole run over half the buffer", web, lines(400, 90), true},
		{"a run and a pending line", web, lines(400, 90) + "unfinished", true},
		{"a run under half the buffer", web, lines(300, 90), false},
		{"a run then a piece of a long line", db, lines(400, 90) + long, false},
		{"no output", alone, lines(400, 90), false},
	} {
		sp := newSplitter(max)
		buf := sp.space()
		if len(buf) != readSize {
			t.Fatalf("splitter starts with %d bytes of room, want %d", len(buf), readSize)
		}
		n := copy(buf, c.in)
		c.l.write(Stdout, sp.lines(n), sp)
		if got := &sp.buf[0] != &buf[0]; got != c.give {
			t.Errorf("%s: buffer given: %v, want %v", c.name, got, c.give)
		}
		if pending := c.in[strings.LastIndexByte(c.in, '\n')+1:]; c.give && string(sp.buf[:sp.n]) != pending {
			t.Errorf("%s: %q pending in the new buffer, want %q", c.name, sp.buf[:sp.n], pending)
		}
		if c.l == alone {
			continue
		}
		prefix := web.linePrefix
		done := c.in[:strings.LastIndexByte(c.in, '\n')+1]
		if c.l == db {
			prefix = db.linePrefix
			done += long[:max] + "\n"
		}
		for l := range strings.Lines(done) {
			want.WriteString(string(prefix) + l)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := quiet.Close(); err != nil {
		t.Fatal(err)
	}
	if got := w.buf.String(); got != want.String() {
		t.Errorf("output differs from the lines formatted one by one: %d bytes, want %d", len(got), want.Len())
	}
}

// TestBusyStreamsOutput captures streams whose reads are large runs, the
// ones whose buffers go to the output, from eight containers at once
// through pipes: the output and the files hold every line once, whole and
// in order. Run with -race, it checks that no buffer given to the output
// is read or written by a capture again.
func TestBusyStreamsOutput(t *testing.T) {
	checkLeaks(t)
	names := []string{"a", "bb", "ccc", "d", "e", "f", "g", "h"}
	dir := t.TempDir()
	w := newLineWriter()
	a := newAggregator(t, Config{Dirs: inDir(dir, names), Names: names, Output: w, OutputBuffer: 1 << 30, MaxSize: 1 << 30})
	want := map[string][]string{}
	streams := map[string]string{}
	for i, name := range names {
		var b strings.Builder
		for j := 0; b.Len() < 2<<20; j++ {
			line := fmt.Sprintf("%s %06d %s", name, j, strings.Repeat("y", (i*j)%150))
			want[name] = append(want[name], line)
			b.WriteString(line + "\n")
		}
		streams[name] = b.String()
	}
	captureThroughPipes(t, a, names, func(_ int, name string, w io.Writer) {
		io.WriteString(w, streams[name])
	})
	got := byContainer(t, w.lines(), names)
	for _, name := range names {
		if !slices.Equal(got[name], want[name]) {
			t.Errorf("output: %s: %d lines, want the %d written, in order", name, len(got[name]), len(want[name]))
		}
		var file []string
		for _, r := range readFile(t, filepath.Join(dir, name+".log")) {
			file = append(file, string(r.Text))
		}
		if !slices.Equal(file, want[name]) {
			t.Errorf("file: %s: %d lines, want the %d written, in order", name, len(file), len(want[name]))
		}
	}
}

func TestNewOpensEveryFileOrNone(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	names := make([]string, 20)
	for i := range names {
		names[i] = fmt.Sprintf("c%d", i)
	}
	a := newAggregator(t, Config{Dirs: inDir(dir, names), Names: names})
	for _, name := range names {
		if _, err := os.Stat(filepath.Join(dir, name+".log")); err != nil {
			t.Errorf("after New: %v", err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	// One file that cannot be opened fails New, naming its container,
	// and leaves none of the others open (checkLeaks).
	bad := t.TempDir()
	if err := os.Mkdir(filepath.Join(bad, "c7.log"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Dirs: inDir(bad, names), Names: names}); err == nil || !strings.Contains(err.Error(), `"c7"`) {
		t.Errorf("New with c7.log a directory: %v, want an error naming c7", err)
	}
}

// TestOpenCutsTornRecord appends to the file of an earlier run that a
// crash cut short in a record's text: the torn record is cut off before
// anything is written after it, so that the file reads whole again.
func TestOpenCutsTornRecord(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "web.log")
	ts := appendTimeStream(nil, time.Now(), Stdout)
	whole := appendRecord(nil, ts, []byte("before the crash"), false)
	torn := appendRecord(nil, ts, []byte("cut\nshort"), false)
	if err := os.WriteFile(path, append(bytes.Clone(whole), torn[:len(torn)-4]...), 0o640); err != nil {
		t.Fatal(err)
	}
	a := newAggregator(t, Config{Dirs: inDir(dir, []string{"web"}), Names: []string{"web"}})
	if st, err := os.Stat(path); err != nil || st.Size() != int64(len(whole)) {
		t.Fatalf("after New: %v, %d bytes; want the %d of the whole record", err, st.Size(), len(whole))
	}
	web, _ := a.Container("web")
	web.Capture(Stdout, strings.NewReader("after\n"))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	want := []record{{Stream: Stdout, Text: []byte("before the crash")}, {Stream: Stdout, Text: []byte("after")}}
	if got := readFile(t, path); !slices.EqualFunc(got, want, sameLine) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// TestContainerCannotForgeRecord has a container write what a record of
// the supervisor looks like: it stays the container's text, in the file,
// in `stack logs` and in the output.
func TestContainerCannotForgeRecord(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	var out bytes.Buffer
	a := newAggregator(t, Config{Dirs: inDir(dir, []string{"web"}), Names: []string{"web"}, Output: &out})
	web, _ := a.Container("web")
	forged := appendRecord(nil, appendTimeStream(nil, time.Now(), Event), []byte("OOM-killed"), false)
	// As a line of its own, then with a record's length cut short, so
	// that a reader trusting the wrong length would land in the text.
	in := string(forged) + `{"time":"2026-01-02T03:04:05.000000000Z","stream":"stdout","bytes":1}` + "\n" + string(forged)
	web.Capture(Stdout, strings.NewReader(in))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	var want []record
	for _, l := range strings.Split(strings.TrimSuffix(in, "\n"), "\n") {
		want = append(want, record{Stream: Stdout, Text: []byte(l)})
	}
	if got := readFile(t, filepath.Join(dir, "web.log")); !slices.EqualFunc(got, want, sameLine) {
		t.Errorf("file: got %+v, want %+v", got, want)
	}
	var printed bytes.Buffer
	if err := Print(context.Background(), &printed, inDir(dir, []string{"web"}), PrintOptions{Tail: TailAll}); err != nil {
		t.Fatal(err)
	}
	wantOut := "web | " + strings.ReplaceAll(strings.TrimSuffix(in, "\n"), "\n", "\nweb | ") + "\n"
	if printed.String() != wantOut {
		t.Errorf("stack logs: got %q, want %q", printed.String(), wantOut)
	}
	if out.String() != wantOut {
		t.Errorf("output: got %q, want %q", out.String(), wantOut)
	}
}

// TestShortWrite has the kernel write only part of a batch (the file
// size limit, RLIMIT_FSIZE, is reached inside it) and fail the rest: the
// part written is cut back out, so the file holds whole records only,
// and the batch's lines are counted as lost.
func TestShortWrite(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	a := newAggregator(t, Config{Dirs: inDir(dir, []string{"web"}), Names: []string{"web"}})
	web, _ := a.Container("web")
	web.Capture(Stdout, strings.NewReader("first\n"))
	if err := web.Wait(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "web.log")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	// Room for the next record's head and part of its text. The limit
	// holds for the whole test process, for as short a time as can be;
	// SIGXFSZ is ignored by Go programs.
	limit := syscall.Rlimit{Cur: uint64(st.Size()) + 100, Max: old.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Fatal(err)
	}
	web.Capture(Stdout, strings.NewReader(strings.Repeat("0123456789\n", 20)))
	err = web.Wait()
	if rerr := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); rerr != nil {
		t.Fatal(rerr)
	}
	if !errors.Is(err, syscall.EFBIG) || !strings.Contains(err.Error(), "20 lines lost") {
		t.Errorf("Wait: got %v, want 20 lines lost to EFBIG", err)
	}
	if after, err := os.Stat(path); err != nil || after.Size() != st.Size() {
		t.Errorf("after the failed write: %v, %d bytes; want it cut back to %d", err, after.Size(), st.Size())
	}
	web.Capture(Stdout, strings.NewReader("last\n"))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	got := readFile(t, path)
	var texts []string
	for _, r := range got {
		if r.Stream == Stdout {
			texts = append(texts, string(r.Text))
		}
	}
	if !slices.Equal(texts, []string{"first", "last"}) {
		t.Errorf("the file holds %q, want the lines before and after the failed write", texts)
	}
}
