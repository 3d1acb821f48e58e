package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
)

// The kernel's process events connector (include/uapi/linux/cn_proc.h and
// connector.h). Every system is timed by the same kernel clock this way: an
// exec event says when a container's program really started, whichever tool
// started it, without polling that would steal CPU from what is measured.
const (
	cnIdxProc         = 1
	cnValProc         = 1
	procCnMcastListen = 1
	procEventExec     = 0x00000002
	procEventExit     = 0x80000000

	nlmsgHdrLen = 16
	cnMsgLen    = 20
	// procEventHdrLen is what, cpu and timestamp_ns before the union.
	procEventHdrLen = 16
)

// procEvent is an exec or an exit of a process (not a thread), timed by
// CLOCK_MONOTONIC.
type procEvent struct {
	exec bool
	pid  int
	at   time.Duration
	// signal is the signal that killed the process (exits only; 0 if none).
	signal int
}

// errEventsLost says that events a watch may have needed never reached it:
// a run that saw it is void, and a wait for them would wait in vain.
var errEventsLost = errors.New("process events were lost")

// errSocketOverflow is the loss the socket reports with ENOBUFS.
var errSocketOverflow = fmt.Errorf("%w: the kernel dropped some, the socket's buffer being full", errEventsLost)

// procWatcher follows every exec and exit on the host and hands on those of
// processes running one exact command line. Benchmarks make their command
// lines unique (a random sleep length, a random word in a script), so that
// nothing else running on the machine is counted.
type procWatcher struct {
	fd int

	mu sync.Mutex
	// watches are the command lines asked for (argv, each argument ended
	// by NUL as in /proc/PID/cmdline), each with where its events go.
	watches map[string]*watch
	// pids remembers which watch an exec'd process matched, for its exit.
	pids map[int]string
	// ended is why the reader stopped; a watch begun after it has lost
	// every event.
	ended error

	// stop asks the reader to end; done says it has.
	stop, done chan struct{}
}

// A watch is what one command line's processes do: their events, and a
// channel closed once any of them may have been dropped, so that a wait
// on the events ends then instead of at its deadline.
type watch struct {
	events chan procEvent
	lost   chan struct{}
	// why is written before lost is closed and read only after.
	why error
}

// lose marks the watch as lossy, once, for the first reason; the caller
// holds the watcher's lock.
func (wa *watch) lose(why error) {
	select {
	case <-wa.lost:
	default:
		wa.why = why
		close(wa.lost)
	}
}

// lostErr is why events of the watch were lost (wrapping errEventsLost),
// or nil while none were.
func (wa *watch) lostErr() error {
	select {
	case <-wa.lost:
		return wa.why
	default:
		return nil
	}
}

// newProcWatcher subscribes to the process events; it needs root in the
// initial user and pid namespaces.
func newProcWatcher() (*procWatcher, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_CONNECTOR)
	if err != nil {
		return nil, fmt.Errorf("open process events socket: %w", err)
	}
	// A burst of 200 containers starting while others compile makes
	// thousands of events; a large buffer keeps the kernel from dropping
	// them (SO_RCVBUFFORCE: root may exceed rmem_max).
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("size process events socket buffer: %w", err)
	}
	// Netlink sockets cannot be shut down to wake a blocked reader, so the
	// reader wakes up on its own now and then to see whether it must stop.
	tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("set process events socket timeout: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind process events socket: %w", err)
	}
	w := newWatcherOn(fd)
	if err := w.listen(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	go w.read()
	return w, nil
}

// newWatcherOn is a watcher of the socket fd whose reader is not started.
func newWatcherOn(fd int) *procWatcher {
	return &procWatcher{fd: fd, watches: map[string]*watch{}, pids: map[int]string{}, stop: make(chan struct{}), done: make(chan struct{})}
}

// listen asks the kernel to multicast every process event to the socket.
func (w *procWatcher) listen() error {
	msg := make([]byte, nlmsgHdrLen+cnMsgLen+4)
	le := binary.LittleEndian
	le.PutUint32(msg[0:], uint32(len(msg)))
	le.PutUint16(msg[4:], unix.NLMSG_DONE)
	le.PutUint32(msg[12:], uint32(os.Getpid()))
	cn := msg[nlmsgHdrLen:]
	le.PutUint32(cn[0:], cnIdxProc)
	le.PutUint32(cn[4:], cnValProc)
	le.PutUint16(cn[16:], 4)
	le.PutUint32(cn[cnMsgLen:], procCnMcastListen)
	err := linux.IgnoringEINTR(func() error {
		return unix.Sendto(w.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
	})
	if err != nil {
		return fmt.Errorf("subscribe to process events: %w", err)
	}
	return nil
}

// watch follows the processes that exec argv, until stop is called. Its
// channel is large enough for the runs here; an event that does not fit
// marks the watch as lossy. Losses before the watch began do not count.
func (w *procWatcher) watch(argv []string) (wa *watch, stop func()) {
	token := strings.Join(argv, "\x00") + "\x00"
	wa = &watch{events: make(chan procEvent, 4096), lost: make(chan struct{})}
	w.mu.Lock()
	if w.ended != nil {
		wa.lose(w.ended)
	}
	w.watches[token] = wa
	w.mu.Unlock()
	return wa, func() {
		w.mu.Lock()
		delete(w.watches, token)
		for pid, t := range w.pids {
			if t == token {
				delete(w.pids, pid)
			}
		}
		w.mu.Unlock()
	}
}

// loseAll marks every watch as lossy: which command lines the dropped
// events were of, nobody knows.
func (w *procWatcher) loseAll(why error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, wa := range w.watches {
		wa.lose(why)
	}
}

// end records why the reader stopped: from then on no event arrives, so
// every watch, present or to come, has lost its events.
func (w *procWatcher) end(why error) {
	w.mu.Lock()
	w.ended = why
	w.mu.Unlock()
	w.loseAll(why)
}

func (w *procWatcher) close() error {
	close(w.stop)
	<-w.done
	return unix.Close(w.fd)
}

func (w *procWatcher) read() {
	defer close(w.done)
	buf := make([]byte, 64<<10)
	for {
		select {
		case <-w.stop:
			w.end(fmt.Errorf("%w: the watcher was closed", errEventsLost))
			return
		default:
		}
		n, _, err := unix.Recvfrom(w.fd, buf, 0)
		switch {
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.EAGAIN):
			continue
		case errors.Is(err, unix.ENOBUFS):
			w.loseAll(errSocketOverflow)
			continue
		case err != nil:
			w.end(fmt.Errorf("%w: read process events: %w", errEventsLost, err))
			return
		}
		for msg := buf[:n]; len(msg) >= nlmsgHdrLen; {
			l := int(binary.LittleEndian.Uint32(msg))
			if l < nlmsgHdrLen || l > len(msg) {
				break
			}
			w.handle(msg[nlmsgHdrLen:l])
			next := (l + 3) &^ 3 // netlink messages are 4-byte aligned
			if next > len(msg) {
				break
			}
			msg = msg[next:]
		}
	}
}

// handle decodes one cn_msg carrying a proc_event.
func (w *procWatcher) handle(cn []byte) {
	if len(cn) < cnMsgLen+procEventHdrLen+8 {
		return
	}
	le := binary.LittleEndian
	ev := cn[cnMsgLen:]
	what := le.Uint32(ev[0:])
	at := time.Duration(le.Uint64(ev[8:]))
	data := ev[procEventHdrLen:]
	pid, tgid := int(le.Uint32(data[0:])), int(le.Uint32(data[4:]))
	if pid != tgid {
		return // a thread, not a process
	}
	switch what {
	case procEventExec:
		w.exec(pid, at)
	case procEventExit:
		if len(data) < 16 {
			return
		}
		w.exit(pid, at, int(le.Uint32(data[8:])))
	}
}

func (w *procWatcher) exec(pid int, at time.Duration) {
	w.mu.Lock()
	empty := len(w.watches) == 0
	w.mu.Unlock()
	if empty {
		return
	}
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return // gone already: only long-lived programs are matched on exec
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if wa, ok := w.watches[string(raw)]; ok {
		w.pids[pid] = string(raw)
		send(wa, procEvent{exec: true, pid: pid, at: at})
	}
}

func (w *procWatcher) exit(pid int, at time.Duration, status int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	token, ok := w.pids[pid]
	if !ok {
		return
	}
	delete(w.pids, pid)
	if wa, ok := w.watches[token]; ok {
		send(wa, procEvent{pid: pid, at: at, signal: status & 0x7f})
	}
}

// send never blocks the reader: a full channel counts as a loss. The
// caller holds the watcher's lock.
func send(wa *watch, ev procEvent) {
	select {
	case wa.events <- ev:
	default:
		wa.lose(fmt.Errorf("%w: the watch's channel was full (%d events unread)", errEventsLost, cap(wa.events)))
	}
}

// monotonic is CLOCK_MONOTONIC, the clock of the events' timestamps.
func monotonic() time.Duration {
	var ts unix.Timespec
	// clock_gettime(CLOCK_MONOTONIC) cannot fail with a valid pointer.
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}
