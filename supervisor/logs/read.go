package logs

import (
	"bufio"
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// TailAll, as PrintOptions.Tail, prints every line.
const TailAll = -1

// DefaultPoll is how often Print looks for new lines when following.
const DefaultPoll = 100 * time.Millisecond

// PrintOptions says what Print prints.
type PrintOptions struct {
	// Containers names the containers to show; none means all that have
	// a log.
	Containers []string
	// Tail is how many of the last lines of each container to show (like
	// `docker compose logs -n`); TailAll shows all.
	Tail int
	// Timestamps puts each line's time before its text.
	Timestamps bool
	// Color colors the names (see Config.Color).
	Color bool
	// Follow keeps printing lines as they are written, across rotations
	// and restarts, until the context ends or Stopped reports true.
	Follow bool
	// Stopped reports that the stack has ended, so that no more lines will
	// come. Once it does, Print prints what was written until then and
	// returns. Nil: follow until the context ends.
	Stopped func() bool
	// Poll is how often to look for new lines; 0 means DefaultPoll.
	Poll time.Duration
}

// Print prints the logs of the containers of dirs (by name, the
// directory of each one's log files, as Config.Dirs) as `NAME | LINE`,
// merged in time order across containers (lines of equal time in the
// order of the names), and follows them if asked. It returns nil when it
// has printed everything, when the stack has ended, or when ctx is done.
func Print(ctx context.Context, w io.Writer, dirs map[string]string, opts PrintOptions) error {
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	all, err := listLogs(dirs)
	if err != nil {
		return err
	}
	shown := opts.Containers
	if len(shown) == 0 {
		shown = all
	}
	for _, name := range shown {
		if !slices.Contains(all, name) {
			return fmt.Errorf("logs of container %q: no such container with a log", name)
		}
	}
	p := &printer{
		w:     bufio.NewWriterSize(w, 64<<10),
		fmt:   newFormatter(shown, all, opts.Color),
		stamp: opts.Timestamps,
	}
	// Each container's position breaks ties between lines of equal time.
	readers := make([]*fileReader, len(shown))
	for i, name := range slices.Sorted(slices.Values(shown)) {
		readers[i] = &fileReader{path: filepath.Join(dirs[name], name+".log"), name: name, order: i}
		if opts.Tail >= 0 {
			if err := readers[i].skipToTail(opts.Tail); err != nil {
				return closeAll(readers, err)
			}
		}
	}
	err = p.merge(readers)
	for err == nil && opts.Follow {
		ended := opts.Stopped != nil && opts.Stopped()
		if ended {
			// Lines written before the stack ended may not have been read
			// yet: one more round reads them.
			err = p.round(readers)
			break
		}
		select {
		case <-ctx.Done():
			return closeAll(readers, p.w.Flush())
		case <-time.After(opts.Poll):
		}
		err = p.round(readers)
	}
	if err == nil {
		err = p.w.Flush()
	}
	return closeAll(readers, err)
}

// closeAll closes the readers, and adds to err their close errors and
// the records they could not read.
func closeAll(readers []*fileReader, err error) error {
	errs := []error{err}
	for _, r := range readers {
		errs = append(errs, r.close())
		if r.bads > 0 {
			errs = append(errs, fmt.Errorf("read logs of container %q: %d unreadable records passed over; the first: %w", r.name, r.bads, r.bad))
		}
	}
	return errors.Join(errs...)
}

// listLogs returns, sorted, the names of dirs whose directory holds
// their log.
func listLogs(dirs map[string]string) ([]string, error) {
	var names []string
	for name, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read logs: %w", err)
		}
		if slices.ContainsFunc(entries, func(e os.DirEntry) bool { return e.Type().IsRegular() && isLogOf(name, e.Name()) }) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// isLogOf reports whether file is name.log or, since name.log may be
// missing for a moment while it is rotated, one of its elders
// name.log.1, name.log.2 and so on.
func isLogOf(name, file string) bool {
	rest, ok := strings.CutPrefix(file, name+".log")
	if !ok {
		return false
	}
	if rest == "" {
		return true
	}
	n, ok := strings.CutPrefix(rest, ".")
	return ok && isDigits(n)
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// printer writes records as lines of output.
type printer struct {
	w     *bufio.Writer
	fmt   formatter
	stamp bool
	line  []byte
}

// print prints the lines of one record.
func (p *printer) print(e entry) error {
	p.line = p.line[:0]
	for text := range e.rec.lines() {
		p.line = p.fmt.appendLine(p.line, e.r.linePrefix(p.fmt), e.r.eventPrefix(p.fmt), e.rec.Stream, e.rec.Time, text, p.stamp)
	}
	if _, err := p.w.Write(p.line); err != nil {
		return fmt.Errorf("print logs: %w", err)
	}
	return nil
}

// entry is a record with the reader it came from.
type entry struct {
	rec record
	r   *fileReader
}

func (a entry) before(b entry) bool {
	if !a.rec.Time.Equal(b.rec.Time) {
		return a.rec.Time.Before(b.rec.Time)
	}
	return a.r.order < b.r.order
}

// merge prints what the readers hold now, merged by time: each file is in
// time order, so a heap of each reader's next record does it in one pass.
func (p *printer) merge(readers []*fileReader) error {
	h := &entryHeap{}
	for _, r := range readers {
		rec, ok, err := r.next()
		if err != nil {
			return err
		}
		if ok {
			*h = append(*h, entry{rec, r})
		}
	}
	heap.Init(h)
	for h.Len() > 0 {
		e := (*h)[0]
		if err := p.print(e); err != nil {
			return err
		}
		rec, ok, err := e.r.next()
		if err != nil {
			return err
		}
		if ok {
			(*h)[0] = entry{rec, e.r}
			heap.Fix(h, 0)
		} else {
			heap.Pop(h)
		}
	}
	return nil
}

// round prints the lines written since the last round. Lines of one round
// are sorted by time; a line that was late to its file can come after a
// later line of another container printed in an earlier round.
func (p *printer) round(readers []*fileReader) error {
	var entries []entry
	for _, r := range readers {
		for {
			rec, ok, err := r.next()
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			entries = append(entries, entry{rec, r})
		}
	}
	slices.SortStableFunc(entries, func(a, b entry) int {
		if a.before(b) {
			return -1
		}
		if b.before(a) {
			return 1
		}
		return 0
	})
	for _, e := range entries {
		if err := p.print(e); err != nil {
			return err
		}
	}
	return p.w.Flush()
}

type entryHeap []entry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].before(h[j]) }
func (h entryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *entryHeap) Push(x any)        { *h = append(*h, x.(entry)) }
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// fileReader reads the records of one container: its rotated files oldest
// first, then the current one, and then what is appended to it, following
// it when it is rotated. It tells files apart by inode, since rotation
// renames them under the reader.
type fileReader struct {
	path  string // of the current file; rotated ones are path.1, path.2, ...
	name  string
	order int

	file    *os.File
	ino     uint64
	br      *bufio.Reader
	pending []byte     // the start of a head whose end is not written yet
	head    recordHead // of the record whose text is being read
	text    []byte     // what is read of its text and newline; nil between records
	skipped []byte     // the buffer of texts that skip passes over
	broken  bool       // the file holds no more records: passed over to its end
	skip    int        // lines to pass over before the first returned
	bad     error      // about the first unreadable record
	bads    int        // unreadable records passed over

	prefixes [2][]byte // line and event prefix, made on first use
}

func (r *fileReader) linePrefix(f formatter) []byte {
	if r.prefixes[0] == nil {
		r.prefixes[0], r.prefixes[1] = f.linePrefix(r.name), f.eventPrefix(r.name)
	}
	return r.prefixes[0]
}

func (r *fileReader) eventPrefix(f formatter) []byte {
	r.linePrefix(f)
	return r.prefixes[1]
}

// skipToTail positions the reader n lines before the end: it counts
// lines from the newest file back and starts in the file where the count
// reaches n. Each file is counted through the descriptor it is then
// read from, so a rotation meanwhile cannot swap it for another.
func (r *fileReader) skipToTail(n int) error {
	total := 0
	for k := 0; ; k++ {
		f, err := os.Open(rotatedPath(r.path, k))
		if errors.Is(err, os.ErrNotExist) {
			return nil // fewer than n: read them all
		}
		if err != nil {
			return fmt.Errorf("open log: %w", err)
		}
		c, err := countLines(f)
		if err != nil {
			f.Close()
			return err
		}
		total += c
		if total >= n {
			r.skip = total - n
			return r.use(f)
		}
		f.Close()
	}
}

// countLines counts the lines of the whole records in f from its start,
// leaving its offset where it was.
func countLines(f *os.File) (int, error) {
	lines, _, err := walkRecords(io.NewSectionReader(f, 0, math.MaxInt64))
	if err != nil {
		return 0, fmt.Errorf("count lines of %s: %w", f.Name(), err)
	}
	return lines, nil
}

// next returns the next record, or ok false when there is none yet.
//
// A record is found from the one before it: its head is read, and then
// as many bytes as the head says. Anything else is unreadable, and so is
// the rest of its file, since no head can be found after it without
// looking in texts, which hold what containers wrote: the reader passes
// over it all (the writer never continues such a file; see Log.open). A
// record not yet whole at the end of the file is waited for, unless the
// file is finished (rotated away): then it is torn, and passed over.
func (r *fileReader) next() (rec record, ok bool, err error) {
	for {
		if r.file == nil {
			if err := r.openOldest(); err != nil || r.file == nil {
				return rec, false, err
			}
		}
		var err error
		switch {
		case r.broken:
			if _, err = io.Copy(io.Discard, r.br); err == nil {
				err = io.EOF
			}
		case r.text == nil:
			var line []byte
			line, err = r.br.ReadSlice('\n')
			if err != nil {
				// At the end of what is written, or in a line longer than
				// the buffer, which no head is.
				r.pending = append(r.pending, line...)
				if len(r.pending) > maxHead {
					r.unreadable(r.pending, errHead)
					continue
				}
				break
			}
			if len(r.pending) > 0 {
				line = append(r.pending, line...)
				r.pending = r.pending[:0]
			}
			h, perr := parseHead(line)
			if perr != nil {
				r.unreadable(line, perr)
				continue
			}
			r.head = h
			r.text = r.textBuffer(h.size + 1)
			continue
		default:
			var whole bool
			if whole, err = r.readText(); err == nil && whole {
				rec, ok = r.record()
				if ok {
					return rec, true, nil
				}
				continue
			}
		}
		switch {
		case err == io.EOF:
			moved, err := r.successor()
			if err != nil || !moved {
				return rec, false, err
			}
		case err != nil:
			return rec, false, fmt.Errorf("read log %s: %w", r.file.Name(), err)
		}
	}
}

// textBuffer is room for n bytes of a record's text: a buffer of its own
// for a record that will be returned, whose text the caller keeps; the
// reader's for one that is skipped.
func (r *fileReader) textBuffer(n int) []byte {
	if r.skip == 0 {
		return make([]byte, 0, n)
	}
	if cap(r.skipped) < n {
		r.skipped = make([]byte, 0, n)
	}
	return r.skipped[:0:n]
}

// readText reads what the file holds of the current record's text and
// newline, and reports whether it is whole; the error is io.EOF if not.
func (r *fileReader) readText() (bool, error) {
	for len(r.text) < cap(r.text) {
		n, err := r.br.Read(r.text[len(r.text):cap(r.text)])
		r.text = r.text[:len(r.text)+n]
		if err != nil {
			return false, err
		}
	}
	return true, nil
}

// record makes the record of the head and text just read, or reports
// false when the text is passed over: it is unreadable, or its lines are
// among those skipToTail skips.
func (r *fileReader) record() (record, bool) {
	text := r.text
	r.text = nil
	if text[len(text)-1] != '\n' {
		r.unreadable(text[max(len(text)-100, 0):], fmt.Errorf("no newline after its %d bytes", r.head.size))
		return record{}, false
	}
	rec := record{Time: r.head.time, Stream: r.head.stream, Text: text[:len(text)-1], Partial: r.head.partial}
	if r.skip > 0 {
		// Skipped lines are counted, not printed.
		n := bytes.Count(text, newline)
		if r.skip >= n {
			r.skip -= n
			return record{}, false
		}
		rec.dropLines(r.skip)
		rec.Text = bytes.Clone(rec.Text) // not the reader's buffer
		r.skip = 0
	}
	return rec, true
}

// unreadable passes over the rest of the current file, from b on, which
// is not a record (see next).
func (r *fileReader) unreadable(b []byte, err error) {
	if r.bad == nil {
		r.bad = fmt.Errorf("%s: unreadable record %.100q: %w; the rest of the file is passed over", r.file.Name(), b, err)
	}
	r.bads++
	r.broken, r.pending, r.text = true, r.pending[:0], nil
}

// openOldest opens the oldest file of the log, if there is one yet. A
// rotation may rename the files while they are looked at: the oldest is
// opened only once it is seen to be the oldest after it was opened.
func (r *fileReader) openOldest() error {
	for {
		k, ino := r.oldest()
		f, err := os.Open(rotatedPath(r.path, k))
		if errors.Is(err, os.ErrNotExist) {
			if k == 0 {
				return nil // not written yet
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("open log: %w", err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return fmt.Errorf("open log: %w", err)
		}
		if _, now := r.oldest(); inode(st) == ino && now == ino {
			return r.use(f)
		}
		f.Close()
	}
}

// oldest returns k and the inode of the oldest file, path.k. Rotation
// renames one file at a time, oldest first, so at most one of the files is
// missing at any moment: two missing in a row is the end.
func (r *fileReader) oldest() (k int, ino uint64) {
	missing := 0
	for i := 0; missing < 2; i++ {
		st, err := os.Stat(rotatedPath(r.path, i))
		if err != nil {
			missing++
			continue
		}
		missing = 0
		k, ino = i, inode(st)
	}
	return k, ino
}

// use makes f the file read from, closing the one before.
func (r *fileReader) use(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open log: %w", err)
	}
	if err := r.close(); err != nil {
		f.Close()
		return err
	}
	r.file, r.ino = f, inode(st)
	r.pending, r.text, r.broken = r.pending[:0], nil, false
	if r.br == nil {
		r.br = bufio.NewReaderSize(f, 64<<10)
	} else {
		r.br.Reset(f)
	}
	return nil
}

func inode(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino
	}
	return 0
}

func links(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Nlink)
	}
	return 1
}

// successor moves to the file written after the current one, once the
// current one has been rotated away and read to its end. It reports
// whether there is more to read.
func (r *fileReader) successor() (bool, error) {
	st, err := os.Stat(r.path)
	if err == nil && inode(st) == r.ino {
		return false, nil // still the current file: nothing newer
	}
	// Rotated: the writer closed the file before renaming it, so what is
	// in it now is all there will be. Read that first.
	if more, _ := r.br.Peek(1); len(more) > 0 {
		return true, nil
	}
	// A torn record at the end of a finished file cannot be completed by
	// the next file.
	r.pending, r.text = r.pending[:0], nil
	st, err = r.file.Stat()
	if err != nil {
		return false, fmt.Errorf("read log %s: %w", r.file.Name(), err)
	}
	if links(st) == 0 {
		// Rotated out of the kept files (or all of them removed, by a
		// down): every file left is newer. There is more only if one is
		// there; with none, the caller must get back to its loop, which
		// looks again after its poll or ends with its context.
		if err := r.close(); err != nil {
			return false, err
		}
		if err := r.openOldest(); err != nil {
			return false, err
		}
		return r.file != nil, nil
	}
	// The file is path.k for some k, and its successor path.k-1. The
	// writer renames the oldest first, so if the file is still path.k
	// after path.k-1 is opened, what was opened is its successor.
	k := r.rotatedTo()
	if k == 0 {
		return false, nil // being renamed: look again next time
	}
	next, err := os.Open(rotatedPath(r.path, k-1))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // the writer has not created it yet
	}
	if err != nil {
		return false, fmt.Errorf("open log: %w", err)
	}
	if st, err := os.Stat(rotatedPath(r.path, k)); err != nil || inode(st) != r.ino {
		next.Close()
		return false, nil // rotated again meanwhile: look again next time
	}
	return true, r.use(next)
}

// rotatedTo returns k where the current file is now path.k, or 0 if it is
// not found. Rotation renames one file at a time, so at most one of the
// kept files is missing at any moment: two missing in a row is the end.
func (r *fileReader) rotatedTo() int {
	missing := 0
	for k := 1; missing < 2; k++ {
		st, err := os.Stat(rotatedPath(r.path, k))
		if err != nil {
			missing++
			continue
		}
		missing = 0
		if inode(st) == r.ino {
			return k
		}
	}
	return 0
}

func (r *fileReader) close() error {
	if r.file == nil {
		return nil
	}
	err := r.file.Close()
	r.file = nil
	if err != nil {
		return fmt.Errorf("close log: %w", err)
	}
	return nil
}
