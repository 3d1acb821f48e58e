package supervisor

import (
	"fmt"
	"sync"
	"time"
)

// stateWriter holds a stack's state in memory and keeps its file up to
// date (doc.go, "State"): changes are made in memory and written by one
// goroutine a moment later, so that a burst of them costs a write or two
// rather than one each and no change waits for the disk; flush writes at
// once, for the writes that must be synchronous.
type stateWriter struct {
	paths Paths
	// warn reports a write that failed in the background, where nobody
	// can be returned the error.
	warn func(error)

	// mu guards state and version.
	mu    sync.Mutex
	state State
	// version counts the changes to state.
	version uint64

	// writeMu is held from taking a snapshot of the state to renaming it
	// into place, so that writes land in the order of their snapshots and
	// the file never goes back to an older state. It guards written and
	// writes.
	writeMu sync.Mutex
	// written is the version of the state that the file holds.
	written uint64
	// writes counts the state file's writes.
	writes int

	// failing is set from a background write that failed to the next one
	// that did not; only the writer's loop uses it.
	failing bool

	// dirty wakes the writer (see loop) after a change.
	dirty chan struct{}
	// end ends the writer, which closes done as it returns.
	end  chan struct{}
	done chan struct{}
}

// newStateWriter starts the writer of a state that is first the given one;
// nothing is written until the first change or flush. close ends it.
func newStateWriter(paths Paths, initial State, warn func(error)) *stateWriter {
	w := &stateWriter{
		paths: paths,
		warn:  warn,
		state: initial,
		// The initial state counts as a change: the file does not hold it.
		version: 1,
		dirty:   make(chan struct{}, 1),
		end:     make(chan struct{}),
		done:    make(chan struct{}),
	}
	go w.loop()
	return w
}

// stateWriteDelay is how long the writer lets changes gather before it
// writes them. Containers start a few milliseconds apart, each start a
// change: without the delay the writer keeps up with them and writes
// nearly once per container. It bounds how late ps may show a change
// (restarts, exits); a start is flushed before it is reported.
const stateWriteDelay = 50 * time.Millisecond

// change applies fn to the state and has the writer write it soon.
func (w *stateWriter) change(fn func(*State)) {
	w.mu.Lock()
	fn(&w.state)
	w.version++
	w.mu.Unlock()
	select {
	case w.dirty <- struct{}{}:
	default:
		// The writer is already due to write, and will take this change
		// with the others.
	}
}

// update changes a container's entry of the state, as change does.
func (w *stateWriter) update(name string, fn func(*ContainerState)) {
	w.change(func(s *State) { fn(s.Container(name)) })
}

// loop writes the latest state stateWriteDelay after it is woken by a
// change, until it is ended. Changes made while it waits or writes are
// taken together by one write.
func (w *stateWriter) loop() {
	defer close(w.done)
	delay := time.NewTimer(stateWriteDelay)
	delay.Stop()
	for {
		select {
		case <-w.end:
			return
		case <-w.dirty:
		}
		delay.Reset(stateWriteDelay)
		select {
		case <-w.end:
			// The last write, by whoever ended the writer, takes the
			// changes.
			return
		case <-delay.C:
		}
		w.reportFlush(w.flush())
	}
}

// reportFlush warns of a failed background write, once until a write
// succeeds again (a full disk fails every one of them), and then says it
// succeeded: until then ps shows what the file says, checked against the
// processes it names.
func (w *stateWriter) reportFlush(err error) {
	switch {
	case err != nil && !w.failing:
		w.failing = true
		w.warn(fmt.Errorf("%w; ps shows the last state written until the file can be written again", err))
	case err == nil && w.failing:
		w.failing = false
		w.warn(fmt.Errorf("state file %s written again", w.paths.State()))
	}
}

// close ends the writer and waits for it; changes not yet written are
// left for a last flush, which no write of the writer's can then follow.
func (w *stateWriter) close() {
	close(w.end)
	<-w.done
}

// flush writes the state as it is now, unless the file holds it already,
// and returns once it is in place. The snapshot is taken under mu, and
// written outside it, so that no change waits for the disk.
func (w *stateWriter) flush() error {
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	w.mu.Lock()
	version := w.version
	if version == w.written {
		w.mu.Unlock()
		return nil
	}
	b, err := encodeState(&w.state)
	w.mu.Unlock()
	if err != nil {
		return err
	}
	if err := writeStateFile(w.paths, b); err != nil {
		return err
	}
	w.written = version
	w.writes++
	return nil
}
