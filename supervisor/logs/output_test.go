package logs

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestOutputFormats queues lines as read, events formatted already, and
// runs larger than one write, and checks the stream byte for byte: each
// line after its container's prefix, nothing lost, moved or mixed.
func TestOutputFormats(t *testing.T) {
	checkLeaks(t)
	w := newLineWriter()
	o := newOutput(w, 64<<20)
	var want strings.Builder
	var big bytes.Buffer
	for i := range 2 * writeSize / 10 {
		fmt.Fprintf(&big, "big %05d\n", i)
	}
	queue := func(text string, prefix string) {
		b := o.buffer()
		*b = append(*b, text...)
		var p []byte
		if prefix != "" {
			p = []byte(prefix)
		}
		if !o.put(b, p, prefix == "") {
			t.Fatalf("put %q: refused", text)
		}
		if prefix == "" {
			want.WriteString(text)
			return
		}
		for _, l := range strings.SplitAfter(text, "\n") {
			if l != "" {
				want.WriteString(prefix + l)
			}
		}
	}
	queue("one\n\ntwo\n", "web | ")
	queue("web * started\n", "")
	queue(big.String(), "db  | ")
	queue("three\n", "web | ")
	queue(strings.Repeat("x", 100)+"\n", "db  | ")
	if err := o.close(); err != nil {
		t.Fatal(err)
	}
	if got := w.buf.String(); got != want.String() {
		t.Fatalf("output differs: %d bytes, want %d", len(got), want.Len())
	}
}
