package logs

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 60, time.FixedZone("x", 3600))
	tests := []struct {
		name   string
		all    []string
		color  bool
		stamp  bool
		who    string
		stream Stream
		text   string
		want   string
	}{
		{"padded to the longest", []string{"a", "web", "database"}, false, false, "web", Stdout, "hi", "web      | hi\n"},
		{"longest not padded", []string{"a", "database"}, false, false, "database", Stderr, "hi", "database | hi\n"},
		{"empty line", []string{"a"}, false, false, "a", Stdout, "", "a | \n"},
		{"event marked", []string{"a", "web"}, false, false, "web", Event, "exited with status 1", "web * exited with status 1\n"},
		{"timestamp in UTC", []string{"a"}, false, true, "a", Stdout, "x", "a | 2026-01-02T02:04:05.000000060Z x\n"},
		// Colors go by the sorted names: a is first (cyan), b second (yellow).
		{"color first", []string{"b", "a"}, true, false, "a", Stdout, "x", "\x1b[36ma |\x1b[0m x\n"},
		{"color second", []string{"b", "a"}, true, false, "b", Stdout, "x", "\x1b[33mb |\x1b[0m x\n"},
		{"color event", []string{"a"}, true, false, "a", Event, "started", "\x1b[36ma *\x1b[0m \x1b[1mstarted\x1b[0m\n"},
		{"colors cycle", []string{"a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "b0"}, true, false, "b0", Stdout, "x", "\x1b[36mb0 |\x1b[0m x\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFormatter(tt.all, tt.all, tt.color)
			got := string(f.appendLine(nil, f.linePrefix(tt.who), f.eventPrefix(tt.who), tt.stream, at, []byte(tt.text), tt.stamp))
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRecordFormat(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	ts := appendTimeStream(nil, at, Stdout)
	tests := []struct {
		name    string
		text    string
		partial bool
		want    string
	}{
		{"plain", "hello", false, `{"time":"2026-01-02T03:04:05.000000006Z","stream":"stdout","bytes":5}` + "\nhello\n"},
		{"partial", "he", true, `{"time":"2026-01-02T03:04:05.000000006Z","stream":"stdout","bytes":2,"partial":true}` + "\nhe\n"},
		{"empty", "", false, `{"time":"2026-01-02T03:04:05.000000006Z","stream":"stdout","bytes":0}` + "\n\n"},
		{"any bytes", "\"\\\t\r\n\x00\xff}\n{", false, `{"time":"2026-01-02T03:04:05.000000006Z","stream":"stdout","bytes":10}` + "\n\"\\\t\r\n\x00\xff}\n{\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := appendRecord(nil, ts, []byte(tt.text), tt.partial)
			if string(got) != tt.want {
				t.Fatalf("got %q want %q", got, tt.want)
			}
			if n := recordLen(ts, len(tt.text), tt.partial); n != len(got) {
				t.Errorf("recordLen = %d, the record has %d bytes", n, len(got))
			}
			head := got[:bytes.IndexByte(got, '\n')+1]
			h, err := parseHead(head)
			if err != nil {
				t.Fatal(err)
			}
			if h.size != len(tt.text) || h.partial != tt.partial || !h.time.Equal(at) || h.stream != Stdout {
				t.Errorf("read back %+v", h)
			}
			var back map[string]any
			if err := json.Unmarshal(head, &back); err != nil {
				t.Errorf("the head is no JSON: %v", err)
			}
		})
	}
}

// TestParseHeadRefuses checks that what the writer does not write is no
// head: the reader must never take a line of text for one.
func TestParseHeadRefuses(t *testing.T) {
	good := `{"time":"2026-01-02T03:04:05.000000000Z","stream":"stdout","bytes":12}` + "\n"
	if _, err := parseHead([]byte(good)); err != nil {
		t.Fatalf("%q: %v", good, err)
	}
	for _, bad := range []string{
		"",
		"hello\n",
		strings.TrimSuffix(good, "\n"),
		strings.Replace(good, "stdout", "stdin", 1),
		strings.Replace(good, "2026-01-02", "2026-13-02", 1),
		strings.Replace(good, ":12", ":012", 1),
		strings.Replace(good, ":12", ":", 1),
		strings.Replace(good, ":12", ":-1", 1),
		strings.Replace(good, ":12", ":4194305", 1),
		strings.Replace(good, ":12", ":999999999999999999999", 1),
		strings.Replace(good, "}", `,"partial":false}`, 1),
		strings.Replace(good, "}", "} ", 1),
		strings.Replace(good, `"bytes"`, `"log"`, 1),
		`{"time":"2026-01-02T03:04:05.000000000Z","stream":"stdout","log":"hello"}` + "\n",
	} {
		if h, err := parseHead([]byte(bad)); err == nil {
			t.Errorf("parseHead(%q) = %+v, want an error", bad, h)
		}
	}
}

// TestRecordFitsReadBuffer checks that the longest run a splitter yields
// makes a record that readers take (maxBody).
func TestRecordFitsReadBuffer(t *testing.T) {
	if longest := max(MaxLine+readSize, pipeSize); longest > maxBody {
		t.Errorf("a splitter's buffer holds up to %d bytes, more than the %d of a record readers accept", longest, maxBody)
	}
}
