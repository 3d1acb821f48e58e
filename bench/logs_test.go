package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
