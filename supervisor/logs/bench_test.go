package logs

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// benchData writes size bytes of log-like lines (lengths 0 to 400, a few
// tabs and quotes to escape) to a file and returns its path.
func benchData(b *testing.B, size int) string {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"GET", "/api/v1/items", "200", "took", "12ms", "user=42", "\"quoted\"", "\t", "error:", "connection reset"}
	var sb strings.Builder
	for sb.Len() < size {
		n := rng.IntN(40)
		for i := range n {
			if i > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(words[rng.IntN(len(words))])
		}
		sb.WriteByte('\n')
	}
	path := filepath.Join(b.TempDir(), "data")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

const benchSize = 64 << 20 // per stream

// benchLines writes size bytes of numbered 100-byte lines, the data of
// the log part of `make bench` (bench/logs.go), and returns its path.
func benchLines(b *testing.B, size int) string {
	b.Helper()
	payload := strings.Repeat("stack-bench-log-payload/", 4)[:88]
	var sb strings.Builder
	for i := 0; sb.Len()+100 <= size; i++ {
		fmt.Fprintf(&sb, "%010d %s\n", i, payload)
	}
	path := filepath.Join(b.TempDir(), "lines")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkPipeline measures the aggregate throughput of the pipeline:
// `cat` processes writing the data into pipes, captured, split, written
// to rotated files and formatted for an output that discards it.
func BenchmarkPipeline(b *testing.B) {
	mixed, fixed := benchData(b, benchSize), benchLines(b, benchSize)
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer null.Close()
	for _, c := range []struct {
		data    string
		streams int
	}{{mixed, 1}, {mixed, 8}, {fixed, 1}, {fixed, 8}} {
		data, streams := c.data, c.streams
		b.Run(fmt.Sprintf("%s/streams=%d", filepath.Base(data), streams), func(b *testing.B) {
			b.SetBytes(int64(streams * benchSize))
			for b.Loop() {
				var names []string
				for i := range streams {
					names = append(names, fmt.Sprintf("c%d", i))
				}
				// Like `stack up > /dev/null`: every line formatted and
				// written to an output nobody reads.
				a, err := New(Config{Dirs: inDir(b.TempDir(), names), Names: names, Output: null})
				if err != nil {
					b.Fatal(err)
				}
				var cats []*exec.Cmd
				for _, name := range names {
					r, w, err := os.Pipe()
					if err != nil {
						b.Fatal(err)
					}
					cat := exec.Command(benchCat, data)
					cat.Stdout = w
					if err := cat.Start(); err != nil {
						b.Fatal(err)
					}
					w.Close()
					l, _ := a.Container(name)
					l.Capture(Stdout, r)
					cats = append(cats, cat)
					defer r.Close()
				}
				for _, cat := range cats {
					if err := cat.Wait(); err != nil {
						b.Fatal(err)
					}
				}
				if err := a.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCat is the yardstick: the same number of `cat`s of the same
// data to /dev/null.
func BenchmarkCat(b *testing.B) {
	data := benchData(b, benchSize)
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer null.Close()
	for _, streams := range []int{1, 8} {
		b.Run(fmt.Sprintf("streams=%d", streams), func(b *testing.B) {
			b.SetBytes(int64(streams * benchSize))
			for b.Loop() {
				var wg sync.WaitGroup
				for range streams {
					wg.Go(func() {
						cat := exec.Command("cat", data)
						cat.Stdout = null
						if err := cat.Run(); err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
			}
		})
	}
}

// BenchmarkEncode measures splitting, the records' heads and formatting
// alone, without pipes or files, as Log.write does them: the CPU cost per
// byte of the pipeline (a record's text is written from where it was read).
func BenchmarkEncode(b *testing.B) {
	for _, path := range []string{benchData(b, 8<<20), benchLines(b, 8<<20)} {
		data, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(filepath.Base(path), func(b *testing.B) {
			f := newFormatter([]string{"web"}, []string{"web"}, false)
			lp := f.linePrefix("web")
			ts := appendTimeStream(nil, time.Now(), Stdout)
			var batch, term []byte
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				sp := newSplitter(MaxLine)
				for rest := data; len(rest) > 0; {
					n := copy(sp.space(), rest)
					rest = rest[n:]
					for text, partial := range sp.lines(n) {
						if !partial {
							text = text[:len(text)-1]
						}
						batch = appendHead(batch, ts, len(text), partial)
						term, _ = appendLines(term, lp, text)
					}
					batch, term = batch[:0], term[:0]
				}
			}
		})
	}
}

// BenchmarkIdleStack reports the heap the logs of a stack of 50 quiet
// containers hold: two captured pipes each, one line written to each.
func BenchmarkIdleStack(b *testing.B) {
	const containers = 50
	var names []string
	for i := range containers {
		names = append(names, fmt.Sprintf("c%d", i))
	}
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		a, err := New(Config{Dirs: inDir(b.TempDir(), names), Names: names, Output: io.Discard})
		if err != nil {
			b.Fatal(err)
		}
		var pipes []*os.File
		for _, name := range names {
			l, _ := a.Container(name)
			for _, s := range []Stream{Stdout, Stderr} {
				r, w, err := os.Pipe()
				if err != nil {
					b.Fatal(err)
				}
				l.Capture(s, r)
				fmt.Fprintf(w, "%s says hello on %s\n", name, s)
				pipes = append(pipes, r, w)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/containers, "heap-bytes/container")
		for _, p := range pipes {
			p.Close()
		}
		if err := a.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

var benchCat = func() string {
	if c := os.Getenv("BENCH_CAT"); c != "" {
		return c
	}
	return "cat"
}()
