package logs

import (
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

func TestRecordEncoding(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name    string
		text    string
		partial bool
		want    string
	}{
		{"plain", "hello", false, `{"time":"2026-01-02T03:04:05.000000000Z","stream":"stdout","log":"hello"}` + "\n"},
		{"partial", "he", true, `{"time":"2026-01-02T03:04:05.000000000Z","stream":"stdout","log":"he","partial":true}` + "\n"},
		{"escapes", "\"\\\t\r\n\x00\x1f<é>", false, `{"time":"2026-01-02T03:04:05.000000000Z","stream":"stdout","log":"\"\\\t\r\n\u0000\u001f<é>"}` + "\n"},
		{"not UTF-8", "\xff\x00", false, `{"time":"2026-01-02T03:04:05.000000000Z","stream":"stdout","log_base64":"/wA="}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := appendRecordHead(nil, at, Stdout)
			got := appendRecord(nil, head, []byte(tt.text), tt.partial)
			if string(got) != tt.want {
				t.Fatalf("got %s want %s", got, tt.want)
			}
			r, err := parseRecord(got)
			if err != nil {
				t.Fatal(err)
			}
			if string(r.text()) != tt.text || r.Partial != tt.partial || !r.Time.Equal(at) || r.Stream != Stdout {
				t.Errorf("read back %+v", r)
			}
		})
	}
}

// TestPlainRun checks the eight-bytes-at-a-time scan against the table,
// with the byte to escape at every position of a word and around it.
func TestPlainRun(t *testing.T) {
	slow := func(s []byte) int {
		for i, c := range s {
			if !plain[c] {
				return i
			}
		}
		return len(s)
	}
	fill := []byte("abcdefghijklmnopqrstuvwxyz\x7f\x80\xff\x21\x5b\x5d")
	for _, special := range []byte{0, 0x1f, '"', '\\', '\n', 0x20, 0x21, 0x7f, 0xff} {
		for n := 0; n < 24; n++ {
			for at := -1; at < n; at++ {
				s := make([]byte, n)
				for i := range s {
					s[i] = fill[(i*7+n)%len(fill)]
				}
				if at >= 0 {
					s[at] = special
				}
				if got, want := plainRun(s), slow(s); got != want {
					t.Fatalf("plainRun(%q) = %d, want %d", s, got, want)
				}
			}
		}
	}
}
