package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stack-containers/stack/supervisor/logs"
)

// logOutput renders lines from..to-1 of each container as `stack logs`
// prints them, with an event line in between.
func logOutput(names []string, from, to int64) string {
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%-3s | -- started --\n", n)
	}
	for i := from; i < to; i++ {
		for _, n := range names {
			fmt.Fprintf(&b, "%-3s | %0*d %s\n", n, seqDigits, i, logPayload)
		}
	}
	return b.String()
}

func TestLogVerifier(t *testing.T) {
	names := []string{"c0", "c10"}
	full := logOutput(names, 0, 50)
	tests := []struct {
		name    string
		out     string
		verdict string
		err     string
	}{
		{"complete", full, allLines, ""},
		{"oldest rotated away", logOutput(names, 20, 50), "**40 of 100 lines lost**", ""},
		{"line lost in the middle", strings.Replace(full, fmt.Sprintf("c0  | %0*d %s\n", seqDigits, 7, logPayload), "", 1), "", "container c0: line 8 follows line 6"},
		{"line twice", full + fmt.Sprintf("c10 | %0*d %s\n", seqDigits, 49, logPayload), "", "container c10: line 49 follows line 49"},
		{"damaged line", strings.Replace(full, "payload/stack", "payload/stacK", 1), "", "is damaged"},
		{"tail missing", logOutput(names, 0, 49), "", "lines 0 to 48 of 50"},
		{"container missing", logOutput(names[:1], 0, 50), "", "container c10: lines -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verdict, err := newLogVerifier(names, 50).check(strings.NewReader(tt.out))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("check: error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			if !strings.HasPrefix(verdict, tt.verdict) {
				t.Fatalf("verdict %q, want %q...", verdict, tt.verdict)
			}
		})
	}
}

// The data the containers cat is what the verifier expects to read back.
func TestLogDataRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "lines")
	lines, err := writeLogData(path, 1000*logLineLen+37)
	if err != nil {
		t.Fatal(err)
	}
	if lines != 1000 {
		t.Fatalf("wrote %d lines, want 1000", lines)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 1000*logLineLen {
		t.Fatalf("data is %d bytes, want %d", len(raw), 1000*logLineLen)
	}
	var out strings.Builder
	for _, l := range strings.SplitAfter(string(raw), "\n") {
		if l != "" {
			out.WriteString("c0 | " + l)
		}
	}
	verdict, err := newLogVerifier([]string{"c0"}, lines).check(strings.NewReader(out.String()))
	if err != nil || verdict != allLines {
		t.Fatalf("check: %q, %v", verdict, err)
	}
}

// TestLogDataSizeFits checks that logDataSize, as records, fits in what a
// container's log keeps whole (logs.DefaultKeep+1 files of
// logs.DefaultMaxSize): 32 MiB is no product of those defaults, so it is
// kept as a number and checked here against them.
func TestLogDataSizeFits(t *testing.T) {
	// A record's head as the capture writes it, with the longest
	// length a read brings.
	const record = `{"time":"2006-01-02T15:04:05.000000000Z","stream":"stdout","bytes":262144}` + "\n"
	// The smallest read assumed, a page: cat writes far more at a time,
	// and a read's lines are one record.
	const read = 4 << 10
	lines := int64(logDataSize / logLineLen)
	perRecord := int64(read / logLineLen)
	records := (lines + perRecord - 1) / perRecord
	// The lines follow the head as they are, each with its newline (the
	// record's last is the newline that ends it).
	size := records*int64(len(record)) + lines*logLineLen
	// Each rotation may leave a file short of its size by up to one
	// line's record.
	size += logs.DefaultKeep * int64(len(record)+logLineLen)
	if kept := int64(logs.DefaultKeep+1) * logs.DefaultMaxSize; size > kept {
		t.Errorf("%d bytes of log data take up to %d bytes in records, more than the %d a log keeps", logDataSize, size, kept)
	} else {
		t.Logf("%d bytes of log data take up to %d bytes in records, of the %d a log keeps", logDataSize, size, kept)
	}
}
