package logs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
)

// pipeSize is the buffer asked of a captured pipe: four times the
// default, so that a container writing in bursts blocks less often while
// the capture encodes and writes the previous read, and each read brings
// more lines into one batch.
const pipeSize = 256 << 10

// allocAhead is how far past its end a busy log file is given disk space
// at once, and allocMin the write that counts as busy (see Log.reserve).
const (
	allocAhead = 1 << 20
	allocMin   = 64 << 10
)

// Defaults of Config.
const (
	DefaultMaxSize = 10 << 20
	DefaultKeep    = 3
)

// Config sets up an Aggregator.
type Config struct {
	// Dirs is, for each of Names, the directory of its log files:
	// <container>.log and its rotated predecessors <container>.log.1
	// (newest) to .log.<Keep>. One is created if missing, though not its
	// parent: the caller places the containers' directories.
	Dirs map[string]string
	// Names lists every container of the stack: the names are padded to
	// the longest and colored in turn.
	Names []string
	// Output receives the aggregated `NAME | LINE` stream; nil for none.
	Output io.Writer
	// Color colors the names in Output. The caller decides: only for a
	// terminal, and only when NO_COLOR is unset.
	Color bool
	// MaxSize is the size at which a log file is rotated; 0 means
	// DefaultMaxSize.
	MaxSize int64
	// Keep is how many rotated files are kept per container; 0 means
	// DefaultKeep.
	Keep int
	// OutputBuffer is how many bytes may wait for a slow Output before
	// lines are dropped from it (never from the files); 0 means
	// DefaultOutputBuffer.
	OutputBuffer int
	// Warn, if not nil, is told at once when a log file stops taking
	// lines (a full disk) and when it takes them again; the same is an
	// event in Output, and the second one in the file too.
	Warn func(error)
}

// Aggregator writes the logs of the containers of one stack: each to its
// file, and all of them to one output.
type Aggregator struct {
	out  *output // nil without Config.Output
	logs map[string]*Log
}

// New opens (creating or appending to) the log file of every container of
// cfg.Names and starts the writer of the aggregated output.
func New(cfg Config) (*Aggregator, error) {
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = DefaultMaxSize
	}
	if cfg.Keep <= 0 {
		cfg.Keep = DefaultKeep
	}
	if cfg.OutputBuffer <= 0 {
		cfg.OutputBuffer = DefaultOutputBuffer
	}
	a := &Aggregator{logs: make(map[string]*Log, len(cfg.Names))}
	f := newFormatter(cfg.Names, cfg.Names, cfg.Color)
	for _, name := range cfg.Names {
		if err := checkName(name); err != nil {
			return nil, err
		}
		if cfg.Dirs[name] == "" {
			return nil, fmt.Errorf("log of container %q: no directory for it", name)
		}
		if a.logs[name] == nil {
			a.logs[name] = newLog(cfg, f, name)
		}
	}
	// The files (and their directories) are made a few at once, one per
	// CPU: the stack's first container starts only after all are, and
	// making an inode can take long. On an ext4 without a journal, the
	// allocator passes over each inode freed in the last minutes (more
	// while its block is dirty) before it takes one; one at a time, that
	// kept a core idle.
	var eg errgroup.Group
	eg.SetLimit(runtime.GOMAXPROCS(0))
	for _, l := range a.logs {
		eg.Go(l.openFirst)
	}
	if err := eg.Wait(); err != nil {
		a.closeFiles()
		return nil, err
	}
	if cfg.Output != nil {
		a.out = newOutput(cfg.Output, cfg.OutputBuffer)
		for _, l := range a.logs {
			l.out = a.out
			l.term = a.out.buffer()
		}
	}
	return a, nil
}

// checkName refuses a name that would not stay a file inside the log
// directory.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("log of container %q: not a valid container name", name)
	}
	return nil
}

// Container returns the log of the named container, one of Config.Names.
func (a *Aggregator) Container(name string) (*Log, error) {
	l := a.logs[name]
	if l == nil {
		return nil, fmt.Errorf("log of container %q: not a container of the stack", name)
	}
	return l, nil
}

// Close waits until every captured stream has ended, writes out what is
// queued for the output (waiting for the output to take it), and closes
// the files. It returns every error met on the way. To end captures
// early, close their readers first.
func (a *Aggregator) Close() error {
	var errs []error
	for _, l := range a.logs {
		errs = append(errs, l.Wait())
	}
	if a.out != nil {
		errs = append(errs, a.out.close())
	}
	errs = append(errs, a.closeFiles())
	return errors.Join(errs...)
}

func (a *Aggregator) closeFiles() error {
	var errs []error
	for _, l := range a.logs {
		errs = append(errs, l.close())
	}
	return errors.Join(errs...)
}

// Log is the log of one container. It lasts for the whole stack: across
// restarts, each run's streams are captured into the same Log.
type Log struct {
	name        string
	path        string
	maxSize     int64
	keep        int
	fmt         formatter
	linePrefix  []byte
	eventPrefix []byte
	out         *output // nil without output

	captures sync.WaitGroup

	// mu orders the records of the container's streams and events: the
	// time of a batch is taken under it, so each file's records are in
	// time order, which the merge of `stack logs` relies on.
	mu      sync.Mutex
	file    *os.File
	size    int64
	alloc   int64     // the file has space up to here (see reserve)
	noAlloc bool      // the file cannot reserve space: not tried again
	last    time.Time // of the last record; time never goes back in a file
	// The batch: the records not yet written to file (see queue).
	recs     []pendingRecord
	heads    []byte
	batchLen int      // bytes of the batch's records
	iov      [][]byte // of flush
	term     *[]byte  // lines not yet handed to out (see show)
	errs     []error  // write errors and read errors of ended captures
	lost     int      // records not written since errors were last taken
	lostErr  error    // why the first of them was not
	closed   bool     // by Aggregator.Close: no file is opened again

	warn func(error) // Config.Warn
	// losing is set from a write that failed to the next that does not;
	// streak counts the lines lost meanwhile, and notice is what to
	// tell about a change of losing, once the batch is written.
	losing bool
	streak int
	notice string
}

func newLog(cfg Config, f formatter, name string) *Log {
	return &Log{
		name:        name,
		path:        filepath.Join(cfg.Dirs[name], name+".log"),
		maxSize:     cfg.MaxSize,
		keep:        cfg.Keep,
		fmt:         f,
		linePrefix:  f.linePrefix(name),
		eventPrefix: f.eventPrefix(name),
		warn:        cfg.Warn,
	}
}

// openFirst makes the log's directory if missing and opens its file,
// before anything is written to it.
func (l *Log) openFirst() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := os.Mkdir(filepath.Dir(l.path), 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("log of container %q: %w", l.name, err)
	}
	return l.open()
}

// open opens the current log file for appending.
func (l *Log) open() error {
	file, err := os.OpenFile(l.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open log of container %q: %w", l.name, err)
	}
	st, err := file.Stat()
	if err != nil {
		file.Close()
		return fmt.Errorf("open log of container %q: %w", l.name, err)
	}
	size := st.Size()
	if size > 0 {
		// Appending to the file of an earlier run: one cut short by a
		// crash ends in a torn record, which no record written after
		// it must follow (a reader could not find their heads).
		_, end, err := walkRecords(io.NewSectionReader(file, 0, size))
		if err == nil && end < size {
			err = file.Truncate(end)
			size = end
		}
		if err != nil {
			file.Close()
			return fmt.Errorf("open log of container %q: cut torn record: %w", l.name, err)
		}
	}
	l.file, l.size, l.alloc, l.noAlloc = file, size, size, false
	return nil
}

// Capture reads r (a container's stdout or stderr) in a goroutine until
// it ends, writing each line to the log. Wait waits for it. The caller
// keeps r and closes it after Wait, or before to stop the capture.
func (l *Log) Capture(s Stream, r io.Reader) {
	l.captures.Add(1)
	go func() {
		defer l.captures.Done()
		if err := l.capture(s, r); err != nil {
			l.mu.Lock()
			l.errs = append(l.errs, fmt.Errorf("capture %s of container %q: %w", s, l.name, err))
			l.mu.Unlock()
		}
	}()
}

func (l *Log) capture(s Stream, r io.Reader) error {
	growPipe(r)
	sp := newSplitter(MaxLine)
	for {
		n, err := r.Read(sp.space())
		if n > 0 {
			l.write(s, sp.lines(n), sp)
		}
		if err == io.EOF || errors.Is(err, os.ErrClosed) {
			l.write(s, sp.rest(), nil)
			return nil
		}
		if err != nil {
			l.write(s, sp.rest(), nil)
			return err
		}
	}
}

// growPipe asks for a pipeSize buffer when r is a pipe. It is only an
// optimization: a file that is no pipe refuses (EBADF, EINVAL), and a
// system short of pipe memory (EPERM) keeps the default, which works too,
// so errors are deliberately not reported.
func growPipe(r io.Reader) {
	f, ok := r.(*os.File)
	if !ok {
		return
	}
	if c, err := f.SyscallConn(); err == nil {
		_ = c.Control(func(fd uintptr) { _, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) })
	}
}

// Wait waits until every captured stream has ended and returns the errors
// met since the last Wait (reading a stream, writing the file): each error
// is returned once.
func (l *Log) Wait() error {
	l.captures.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.takeErrs()
}

// Event writes a supervisor event about the container (started, exited
// with status 1, ...) to its log and the output, marked as such. The
// message is one line; errors are reported by Wait and Close.
func (l *Log) Event(format string, args ...any) {
	msg := strings.TrimSuffix(fmt.Sprintf(format, args...), "\n")
	l.write(Event, func(yield func([]byte, bool) bool) {
		yield([]byte(msg+"\n"), false)
	}, nil)
}

// write writes what one read of stream s completed, as the splitter
// yields it (runs of whole lines, each with its newline, and pieces of
// longer lines): to the file in one write, to the output as one chunk.
//
// With sp, the runs are slices of sp's buffer, which the capture can
// give up: when the read completed one run of whole lines filling at
// least half of it, sp goes on in another buffer (splitter.give) and the
// run goes to the output where it is, instead of copied. sp lets go of
// the buffer before the output has it: once the output has formatted it,
// another capture reads into it. A busy stream's reads are such runs,
// and copying them for the output was 8 % of the supervisor's CPU with
// eight of them; a quiet stream's short reads are still copied, so that
// a buffer is never queued for a few lines, and what waits for the
// output stays within twice its limit.
func (l *Log) write(s Stream, runs iter.Seq2[[]byte, bool], sp *splitter) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Before(l.last) {
		now = l.last
	}
	l.last = now
	var head [64]byte
	ts := appendTimeStream(head[:0], now, s)
	var whole []byte // the first run, if it may go to the output as it is
	yields := 0
	for run, partial := range runs {
		l.add(ts, run, partial)
		yields++
		switch {
		case l.term == nil:
		case yields == 1 && !partial && sp != nil && 2*len(run) >= len(sp.buf):
			whole = run
		default:
			if whole != nil {
				// Not the read's only run after all.
				l.show(s, now, whole[:len(whole)-1])
				whole = nil
			}
			l.show(s, now, recordText(run, partial))
		}
	}
	l.flush()
	if whole != nil {
		// The file has the runs, and the splitter is done with them (its
		// iterator has returned); it moves its pending bytes out of the
		// buffer first.
		sp.give(l.out.readBuffer(len(sp.buf)))
		if !l.out.putRead(&whole, l.linePrefix) {
			l.out.reads.Put(&whole) // dropped: no one else has it
		}
	} else {
		l.hand(s)
	}
	if msg := l.notice; msg != "" {
		l.notice = ""
		if !l.losing {
			// Written again: the file says where its lines went missing.
			l.queue(appendTimeStream(head[:0], now, Event), []byte(msg+"\n"), false)
			l.flush()
		}
		if l.term != nil {
			l.show(Event, now, []byte(msg))
			l.hand(Event)
		}
		if l.warn != nil {
			l.warn(fmt.Errorf("container %q: %s", l.name, msg))
		}
	}
}

// newline ends every record, and is the last byte of a run of whole
// lines.
var newline = []byte{'\n'}

// hand gives the output what show gathered of stream s, if anything.
func (l *Log) hand(s Stream) {
	if l.term == nil || len(*l.term) == 0 {
		return
	}
	prefix := l.linePrefix
	if s == Event {
		prefix = nil // formatted already
	}
	if l.out.put(l.term, prefix, s == Event) {
		l.term = l.out.buffer()
	} else {
		*l.term = (*l.term)[:0]
	}
}

// add adds run, lines joined by newlines, each with its newline but the
// last when partial, to the batch as one record: the lines of one read
// share their time and stream (ts, from appendTimeStream). Before the
// record would take the file past maxSize, what fits is written (whole
// lines of the run, cut after a newline), the file is rotated and the
// rest goes to the next file. Only a line whose record alone is larger
// than maxSize takes a file past it, and has that file to itself.
func (l *Log) add(ts, run []byte, partial bool) {
	for len(run) > 0 {
		used := l.size + int64(l.batchLen)
		if used+int64(recordLen(ts, len(recordText(run, partial)), partial)) <= l.maxSize {
			l.queue(ts, run, partial)
			return
		}
		n := fitting(ts, run, l.maxSize-used)
		if n == 0 && used == 0 {
			// Not even the first line fits in an empty file.
			n = bytes.IndexByte(run, '\n') + 1
			if n == 0 || n == len(run) {
				l.queue(ts, run, partial)
				return
			}
		}
		if n > 0 {
			l.queue(ts, run[:n], false)
			run = run[n:]
		}
		l.flush()
		l.rotate()
	}
}

// fitting is how much of run, whole lines each through its newline, makes
// a record of at most room bytes; 0 if not even the first line does.
func fitting(ts, run []byte, room int64) int {
	// The head's length depends on the text's, at most room.
	text := room - int64(headLen(ts, int(min(max(room, 0), maxBody)), false)) - 1
	if text < 0 {
		return 0
	}
	return bytes.LastIndexByte(run[:min(int64(len(run)), text+1)], '\n') + 1
}

// show gathers text, lines joined by newlines, for the output: a
// container's lines as they are, each with its newline, for the output
// to format (see output); an event's, rare and short, formatted.
func (l *Log) show(s Stream, t time.Time, text []byte) {
	if s != Event {
		*l.term = append(append(*l.term, text...), '\n')
		return
	}
	for {
		i := bytes.IndexByte(text, '\n')
		if i < 0 {
			break
		}
		*l.term = l.fmt.appendLine(*l.term, l.linePrefix, l.eventPrefix, s, t, text[:i], false)
		text = text[i+1:]
	}
	*l.term = l.fmt.appendLine(*l.term, l.linePrefix, l.eventPrefix, s, t, text, false)
}

// queue adds the record of run (as add takes it) to the batch, to be
// written by flush from where it is: a run of whole lines ends in the
// newline that ends the record too; a piece is followed by one.
func (l *Log) queue(ts, run []byte, partial bool) {
	size := len(recordText(run, partial))
	start := len(l.heads)
	l.heads = appendHead(l.heads, ts, size, partial)
	l.recs = append(l.recs, pendingRecord{head: [2]int{start, len(l.heads)}, text: run, end: partial})
	l.batchLen += len(l.heads) - start + size + 1
}

// recordText is the text of the record of run, as add takes it: a run of
// whole lines without its last newline, which is the record's own.
func recordText(run []byte, partial bool) []byte {
	if partial {
		return run
	}
	return run[:len(run)-1]
}

// pendingRecord is a record of the batch: its head is l.heads[head[0]:
// head[1]], its text is where it was read, and end says whether a
// newline must follow the text to end it.
type pendingRecord struct {
	head [2]int
	text []byte
	end  bool
}

// flush writes the batch, whole records, to the file in one write. A
// failed write is undone (the file is cut back to its size before it),
// so that a later record does not continue a torn one, and its records
// are counted as lost.
func (l *Log) flush() {
	if len(l.recs) == 0 {
		return
	}
	defer func() {
		clear(l.recs) // let go of the texts: they are the splitter's
		l.recs, l.heads, l.batchLen = l.recs[:0], l.heads[:0], 0
	}()
	if l.file == nil {
		err := os.ErrClosed
		if !l.closed {
			// A rotation could not open the new file: try again.
			err = l.open()
		}
		if err != nil {
			l.lose(err)
			return
		}
	}
	l.reserve(l.batchLen)
	l.iov = l.iov[:0]
	for _, r := range l.recs {
		l.iov = append(l.iov, l.heads[r.head[0]:r.head[1]], r.text)
		if r.end {
			l.iov = append(l.iov, newline)
		}
	}
	n, err := writeAll(l.file, l.iov)
	if err == nil {
		l.size += int64(n)
		if l.losing {
			l.losing = false
			l.notice = fmt.Sprintf("log file written again; %d lines were lost", l.streak)
			l.streak = 0
		}
		return
	}
	if n > 0 || l.alloc > l.size {
		// The cut also gives back the space reserved past the end: the
		// disk may be full.
		if err := l.file.Truncate(l.size); err != nil {
			l.errs = append(l.errs, fmt.Errorf("cut torn record from log of container %q: %w", l.name, err))
		}
		l.alloc = l.size
	}
	l.lose(err)
}

// writeAll writes the buffers to f, in order, with as few writev(2) as
// the kernel lets it (one, unless a write comes out short), and says how
// many bytes it wrote.
func writeAll(f *os.File, iov [][]byte) (int, error) {
	c, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	total := 0
	var werr error
	cerr := c.Write(func(fd uintptr) bool {
		for len(iov) > 0 {
			n, err := linux.IgnoringEINTRN(func() (int, error) {
				return unix.Writev(int(fd), iov[:min(len(iov), maxIOV)])
			})
			total += n
			if err != nil {
				werr = err
				return true
			}
			if n == 0 {
				werr = io.ErrShortWrite
				return true
			}
			// Past what was written, and into the buffer it stopped in.
			for len(iov) > 0 && n >= len(iov[0]) {
				n -= len(iov[0])
				iov = iov[1:]
			}
			if n > 0 {
				iov[0] = iov[0][n:]
			}
		}
		return true
	})
	if cerr != nil {
		return total, cerr
	}
	return total, werr
}

// maxIOV is the most buffers one writev(2) takes (IOV_MAX).
const maxIOV = 1024

// reserve gives the file disk space for a write of n bytes and allocAhead
// more, when n is a busy stream's write and the space is not there yet.
// On ext4 a write into space the file has (fallocate's unwritten extents)
// skips delayed allocation's work for each block it fills (reserving the
// block and quota, entering it in the extent status tree): 0.20 against
// 0.14 ns a byte of CPU for eight writers of 256 KiB on this project's
// test machine, fsync included, against one fallocate a MiB. It holds
// nothing back: each write still goes to the page cache at once. The
// file's size stays what was written (FALLOC_FL_KEEP_SIZE), so readers
// see no difference, and trim gives back what is left when the file is
// rotated or closed; a crash leaves at most allocAhead of it, which the
// next writes fill. A quiet stream never reserves. It is only an
// optimization: a file that cannot (a file system without fallocate, a
// full disk) is written as before, and not asked again until the next
// file.
func (l *Log) reserve(n int) {
	end := l.size + int64(n)
	if n < allocMin || end <= l.alloc || l.noAlloc {
		return
	}
	// Not past the size at which the file is rotated, unless this write
	// takes it there.
	to := max(min(end+allocAhead, l.maxSize), end)
	err := errors.ErrUnsupported
	if c, cerr := l.file.SyscallConn(); cerr == nil {
		cerr = c.Control(func(fd uintptr) {
			err = linux.IgnoringEINTR(func() error {
				return unix.Fallocate(int(fd), unix.FALLOC_FL_KEEP_SIZE, l.size, to-l.size)
			})
		})
		if cerr != nil {
			err = cerr
		}
	}
	if err != nil {
		l.noAlloc = true
		return
	}
	l.alloc = to
}

// trim gives back the space reserve left past the end of the file, before
// it is closed: a rotated or idle file keeps only what its records use.
func (l *Log) trim() {
	if l.alloc <= l.size {
		return
	}
	if err := l.file.Truncate(l.size); err != nil {
		l.errs = append(l.errs, fmt.Errorf("give back space reserved for log of container %q: %w", l.name, err))
	}
	l.alloc = l.size
}

// lose counts the lines of the batch as not written because of err. A
// full disk fails every write: one error with a count says it better
// than thousands.
func (l *Log) lose(err error) {
	if l.lost == 0 {
		l.lostErr = err
	}
	n := 0
	for _, r := range l.recs {
		n += bytes.Count(r.text, newline)
		if r.end {
			n++ // the last line, which has no newline of its own
		}
	}
	l.lost += n
	l.streak += n
	if !l.losing {
		// Said once, not for every line, and at once: a line that is
		// lost without a word is what a full disk must never cause.
		l.losing = true
		l.notice = fmt.Sprintf("log file cannot be written (%v); its lines are lost until it can", err)
	}
}

// takeErrs returns and forgets the errors met so far.
func (l *Log) takeErrs() error {
	if l.lost > 0 {
		l.errs = append(l.errs, fmt.Errorf("write log of container %q: %d lines lost: %w", l.name, l.lost, l.lostErr))
		l.lost, l.lostErr = 0, nil
	}
	err := errors.Join(l.errs...)
	l.errs = nil
	return err
}

// rotate shifts name.log.k to name.log.k+1 (the oldest falls off), the
// current file to name.log.1, and starts a new name.log. The current file
// is closed before it is renamed: a reader following it knows that once
// it is renamed, nothing more will be written to it.
func (l *Log) rotate() {
	l.trim()
	if err := l.file.Close(); err != nil {
		l.errs = append(l.errs, fmt.Errorf("rotate log of container %q: close: %w", l.name, err))
	}
	// The file's records are all written: whatever happens next, the
	// file that takes the next ones starts empty.
	l.file, l.size, l.alloc = nil, 0, 0
	// The oldest file goes first, by unlink: a rename that replaces a
	// file makes ext4 (auto_da_alloc) start writing the renamed one back
	// at once, inside the capture's rename call.
	if err := os.Remove(rotatedPath(l.path, l.keep)); err != nil && !errors.Is(err, os.ErrNotExist) {
		l.errs = append(l.errs, fmt.Errorf("rotate log of container %q: %w", l.name, err))
	}
	for k := l.keep; k >= 1; k-- {
		err := os.Rename(rotatedPath(l.path, k-1), rotatedPath(l.path, k))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			l.errs = append(l.errs, fmt.Errorf("rotate log of container %q: %w", l.name, err))
		}
	}
	if err := l.open(); err != nil {
		// flush tries again, and counts what it cannot write.
		l.errs = append(l.errs, fmt.Errorf("rotate: %w", err))
	}
}

// rotatedPath is the k-th rotated file of the log at path; k = 0 is the
// current file.
func rotatedPath(path string, k int) string {
	if k == 0 {
		return path
	}
	return fmt.Sprintf("%s.%d", path, k)
}

func (l *Log) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.file != nil {
		l.trim()
	}
	errs := []error{l.takeErrs()}
	if l.file != nil {
		if err := l.file.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close log of container %q: %w", l.name, err))
		}
		l.file = nil
	}
	return errors.Join(errs...)
}
