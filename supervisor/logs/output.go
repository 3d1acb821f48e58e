package logs

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// DefaultOutputBuffer is how many bytes of lines may wait for a slow
// output before lines are dropped from it.
const DefaultOutputBuffer = 4 << 20

// writeSize is how much formatted text the output gathers for one write:
// the chunks of several containers' reads share a write.
const writeSize = 256 << 10

// output feeds the aggregated stream to a writer that may be slow (a
// terminal, a pipe nobody reads). Lines queue up to a byte limit; beyond it
// they are dropped from the output only, counted, and the count is
// reported in the stream once there is room again. The log files never
// wait for the output: a container whose pipe is not drained blocks in
// write, and a stalled terminal must not stall the containers.
//
// A container's lines are queued as they were read and formatted here,
// just before they are written: the formatting runs beside the captures
// instead of in their way, and lines dropped are never formatted at all.
type output struct {
	w     io.Writer
	limit int

	mu      sync.Mutex
	queue   []chunk
	queued  int   // bytes in queue or being written
	dropped int   // lines dropped since the last notice
	closed  bool  //
	err     error // the first write error; later chunks are discarded

	wake chan struct{} // a chunk was queued or the output closed
	done chan struct{} // run has returned

	buffers sync.Pool // *[]byte
	reads   sync.Pool // *[]byte: read buffers given by captures (see readBuffer)
}

// chunk is what one read of a container brought, for the output.
type chunk struct {
	// text is whole lines, each with its newline: as they were read
	// when prefix is set (each line is shown as prefix, line), else
	// already formatted (supervisor events, the count of dropped lines).
	text   *[]byte
	prefix []byte
	// read says text is a capture's read buffer, given with the lines
	// it was read with (see Log.write): it goes back to reads.
	read bool
}

func newOutput(w io.Writer, limit int) *output {
	o := &output{
		w:     w,
		limit: limit,
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	go o.run()
	return o
}

// buffer returns an empty chunk text to copy lines into.
func (o *output) buffer() *[]byte {
	if b, ok := o.buffers.Get().(*[]byte); ok {
		*b = (*b)[:0]
		return b
	}
	// Small at first: a quiet container never needs more, a busy one
	// grows its chunks and they come back grown.
	b := make([]byte, 0, 4<<10)
	return &b
}

// readBuffer returns a buffer of n bytes for a capture to read into, in
// place of one it gives with putRead.
func (o *output) readBuffer(n int) []byte {
	if b, ok := o.reads.Get().(*[]byte); ok && cap(*b) >= n {
		return (*b)[:n]
	}
	return make([]byte, n)
}

// putRead is put for lines that are in a capture's read buffer, which
// the capture has given up: the output formats them from there instead
// of from a copy, then keeps the buffer for readBuffer.
func (o *output) putRead(text *[]byte, prefix []byte) bool {
	return o.queueChunk(chunk{text: text, prefix: prefix, read: true}, false)
}

// put queues text, whole lines, shown each after prefix (nil for text
// formatted already). always queues it beyond the limit (for the rare
// supervisor events). It reports whether the output took text; if not,
// its lines were dropped and text is the caller's again.
func (o *output) put(text *[]byte, prefix []byte, always bool) bool {
	return o.queueChunk(chunk{text: text, prefix: prefix}, always)
}

// queueChunk queues c, or counts its lines as dropped (see put).
func (o *output) queueChunk(c chunk, always bool) bool {
	text := c.text
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return false
	}
	if !always && o.queued+len(*text) > o.limit {
		o.dropped += bytes.Count(*text, []byte{'\n'})
		return false
	}
	o.noticeLocked()
	o.queue = append(o.queue, c)
	o.queued += len(*text)
	o.signal()
	return true
}

// noticeLocked queues the count of lines dropped since the last notice.
func (o *output) noticeLocked() {
	if o.dropped == 0 {
		return
	}
	b := o.buffer()
	*b = fmt.Appendf(*b, "[stack] %d lines not shown here: the output was too slow; `stack logs` has them\n", o.dropped)
	o.dropped = 0
	o.queue = append(o.queue, chunk{text: b})
	o.queued += len(*b)
}

func (o *output) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *output) run() {
	defer close(o.done)
	var batch []chunk
	var out []byte // formatted, not yet written
	for {
		o.mu.Lock()
		for len(o.queue) == 0 && !o.closed {
			o.mu.Unlock()
			<-o.wake
			o.mu.Lock()
		}
		if len(o.queue) == 0 {
			o.mu.Unlock()
			return
		}
		batch, o.queue = o.queue, batch[:0]
		failed := o.err != nil
		o.mu.Unlock()

		written := 0
		for i, c := range batch {
			if !failed {
				if c.prefix != nil {
					out, _ = appendLines(out, c.prefix, (*c.text)[:len(*c.text)-1])
				} else {
					out = append(out, *c.text...)
				}
				if len(out) >= writeSize || i == len(batch)-1 {
					failed = o.write(out)
					out = out[:0]
				}
			}
			written += len(*c.text)
			switch {
			case c.read:
				o.reads.Put(c.text)
			case cap(*c.text) <= 1<<20:
				o.buffers.Put(c.text)
			}
		}
		clear(batch)
		if cap(out) > 1<<20 {
			out = nil
		}
		o.mu.Lock()
		o.queued -= written
		o.mu.Unlock()
	}
}

// write writes b to the output, and says whether it failed.
func (o *output) write(b []byte) bool {
	if _, err := o.w.Write(b); err != nil {
		o.mu.Lock()
		o.err = fmt.Errorf("write log output: %w", err)
		o.mu.Unlock()
		return true
	}
	return false
}

// close writes what is queued (and the count of dropped lines), waits for
// the writer to finish and returns the first write error.
func (o *output) close() error {
	o.mu.Lock()
	if !o.closed {
		o.noticeLocked()
		o.closed = true
		o.signal()
	}
	o.mu.Unlock()
	<-o.done
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}
