package logs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReadRecords reads arbitrary bytes as a log file, as a damaged or
// hand-edited one may be: Print and countLines must neither panic nor
// hang, and when Print finds nothing unreadable, it prints exactly the
// lines countLines counts.
func FuzzReadRecords(f *testing.F) {
	ts := appendTimeStream(nil, base, Stdout)
	f.Add(appendRecord(nil, ts, []byte("one\ntwo"), false))
	f.Add(append(appendRecord(nil, ts, []byte("piece"), true), appendRecord(nil, appendTimeStream(nil, base, Event), []byte("exited"), false)...))
	f.Add(appendRecord(nil, ts, []byte("torn"), false)[:50])
	f.Add([]byte("{\"time\":\"2026-01-02T03:04:05Z\",\"stream\":\"stderr\",\"bytes\":3}\nabc\n"))
	f.Add([]byte("not a record\n"))
	f.Fuzz(func(t *testing.T, file []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "web.log")
		if err := os.WriteFile(path, file, 0o640); err != nil {
			t.Fatal(err)
		}
		fd, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		counted, err := countLines(fd)
		fd.Close()
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		err = Print(context.Background(), &out, map[string]string{"web": dir}, PrintOptions{Tail: TailAll})
		if err == nil {
			if printed := strings.Count(out.String(), "\n"); printed != counted {
				t.Errorf("printed %d lines, countLines counts %d:\n%q", printed, counted, out.String())
			}
		}
		if counted > 0 {
			out.Reset()
			_ = Print(context.Background(), &out, map[string]string{"web": dir}, PrintOptions{Tail: 1})
			if strings.Count(out.String(), "\n") > 1 && err == nil {
				t.Errorf("-n 1 printed %q", out.String())
			}
		}
	})
}
