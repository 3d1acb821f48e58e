package logs

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readFile returns the records of one log file.
func readFile(t *testing.T, path string) []record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []record
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 8<<20)
	for sc.Scan() {
		r, err := parseRecord(sc.Bytes())
		if err != nil {
			t.Fatalf("%s: record %d: %v: %q", path, len(recs)+1, err, sc.Bytes())
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return recs
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
	dir := t.TempDir()
	var out bytes.Buffer
	a := newAggregator(t, Config{Dir: dir, Names: []string{"web", "database"}, Output: &out})
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
		{Stream: Event, Log: "started"},
		{Stream: Stdout, Log: "hello"},
		{Stream: Stdout, LogBase64: []byte("\x00bin\xff")},
		{Stream: Stdout, Log: "last", Partial: true},
		{Stream: Stderr, Log: "oops \"quoted\" \\ \t\r"},
		{Stream: Event, Log: "exited with status 1"},
	}
	got := readFile(t, filepath.Join(dir, "web.log"))
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Stream != w.Stream || g.Log != w.Log || !bytes.Equal(g.LogBase64, w.LogBase64) || g.Partial != w.Partial {
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
