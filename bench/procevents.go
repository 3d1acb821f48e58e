package main

import (
	"context"
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

// procWatcher follows every exec and exit on the host and hands on those of
// processes running one exact command line. Benchmarks make their command
// lines unique (a random sleep length, a random word in a script), so that
// nothing else running on the machine is counted.
type procWatcher struct {
	fd int

	mu sync.Mutex
	// watches are the command lines asked for (argv, each argument ended
	// by NUL as in /proc/PID/cmdline), each with where its events go.
	watches map[string]chan procEvent
	// pids remembers which watch an exec'd process matched, for its exit.
	pids map[int]string
	// lost is set when the socket overflowed: a run that saw it is void.
	lost bool

	// stop asks the reader to end; done says it has.
	stop, done chan struct{}
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
	w := &procWatcher{fd: fd, watches: map[string]chan procEvent{}, pids: map[int]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	if err := w.listen(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	go w.read()
	return w, nil
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

// watch returns the events of the processes that exec argv, until stop is
// called. The channel is large enough for the runs here; an event that does
// not fit marks the watcher as lossy.
func (w *procWatcher) watch(argv []string) (events <-chan procEvent, stop func()) {
	token := strings.Join(argv, "\x00") + "\x00"
	ch := make(chan procEvent, 4096)
	w.mu.Lock()
	w.watches[token] = ch
	w.mu.Unlock()
	return ch, func() {
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

// takeLost reports whether events were lost since the last call.
func (w *procWatcher) takeLost() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	lost := w.lost
	w.lost = false
	return lost
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
			return
		default:
		}
		n, _, err := unix.Recvfrom(w.fd, buf, 0)
		switch {
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.EAGAIN):
			continue
		case errors.Is(err, unix.ENOBUFS):
			w.mu.Lock()
			w.lost = true
			w.mu.Unlock()
			continue
		case err != nil || n == 0:
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
	if ch, ok := w.watches[string(raw)]; ok {
		w.pids[pid] = string(raw)
		w.send(ch, procEvent{exec: true, pid: pid, at: at})
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
	if ch, ok := w.watches[token]; ok {
		w.send(ch, procEvent{pid: pid, at: at, signal: status & 0x7f})
	}
}

// send never blocks the reader: a full channel counts as a loss.
func (w *procWatcher) send(ch chan procEvent, ev procEvent) {
	select {
	case ch <- ev:
	default:
		w.lost = true
	}
}

// monotonic is CLOCK_MONOTONIC, the clock of the events' timestamps.
func monotonic() time.Duration {
	var ts unix.Timespec
	// clock_gettime(CLOCK_MONOTONIC) cannot fail with a valid pointer.
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

// waitExecs waits until n distinct processes matching the watch have exec'd
// and returns the time of the last one.
func waitExecs(ctx context.Context, events <-chan procEvent, n int) (time.Duration, error) {
	var last time.Duration
	seen := map[int]bool{}
	for len(seen) < n {
		select {
		case ev := <-events:
			if ev.exec && !seen[ev.pid] {
				seen[ev.pid] = true
				last = max(last, ev.at)
			}
		case <-ctx.Done():
			return 0, fmt.Errorf("wait for %d programs to start (saw %d): %w", n, len(seen), ctx.Err())
		}
	}
	return last, nil
}
