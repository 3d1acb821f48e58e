package runtime

import (
	"fmt"
	"os"
	goruntime "runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// builders are the threads that build containers (startInThread): each a
// goroutine locked to a thread of its own for the life of the process,
// serving one build after another. A container's PID 1 gets its
// parent-death signal when the thread that cloned it ends, so a thread
// that cloned one must live as long as the container should; a pool of
// threads that never end keeps that for every container without a thread
// each. It is the process's, as its threads are: one pool, made on the
// first start.
var builders = newBuilderPool(max(8, 4*goruntime.NumCPU()))

// builderPool runs builds on at most max threads, made as builds need
// them.
type builderPool struct {
	// work takes builds; each is called with nil on a thread ready for
	// it, or with the reason no thread is.
	work chan func(error)
	mu   sync.Mutex
	n    int
	max  int
	// host are the namespaces the process started in (nsKinds' order),
	// which a builder returns to before each build; err is why they could
	// not be opened.
	hostOnce sync.Once
	host     []*os.File
	err      error
}

func newBuilderPool(max int) *builderPool {
	return &builderPool{work: make(chan func(error)), max: max}
}

// nsKinds are the namespaces a build changes, with their setns types. The
// pid namespace is the one a builder's children are made in.
var nsKinds = []struct {
	name string
	flag int
}{
	{"mnt", unix.CLONE_NEWNS}, {"net", unix.CLONE_NEWNET}, {"uts", unix.CLONE_NEWUTS},
	{"ipc", unix.CLONE_NEWIPC}, {"pid", unix.CLONE_NEWPID},
}

// do runs build on a builder thread and returns once it has returned. The
// thread is in the process's own namespaces when build starts, with a
// filesystem context (root, working directory, umask) of its own; build may
// change both, and leaves behind nothing that outlives the next build's
// start.
func (p *builderPool) do(build func()) error {
	p.hostOnce.Do(p.openHost)
	if p.err != nil {
		return p.err
	}
	var err error
	done := make(chan struct{})
	fn := func(e error) {
		defer close(done)
		if err = e; e == nil {
			build()
		}
	}
	select {
	case p.work <- fn:
	default:
		p.mu.Lock()
		if p.n < p.max {
			p.n++
			go onOtherThanMain(p.serve)
		}
		p.mu.Unlock()
		p.work <- fn
	}
	<-done
	return err
}

// openHost opens the namespaces of the process's main thread, which no
// build ever runs on (onOtherThanMain), and makes the process not
// dumpable. A container's PID 1 runs in the process's memory until its
// execve, with the container's capabilities once it has dropped the rest:
// a process of another container without a pid namespace of its own, with
// the same capabilities, would pass the kernel's ptrace check on it while
// the memory is dumpable, and reach the supervisor's memory through it
// (the init program makes itself not dumpable for the same reason).
// execve makes the program dumpable again, in memory of its own.
func (p *builderPool) openHost() {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		p.err = fmt.Errorf("builder threads: make the process not dumpable: %w", err)
		return
	}
	for _, k := range nsKinds {
		f, err := os.Open("/proc/self/ns/" + k.name)
		if err != nil {
			p.err = fmt.Errorf("builder threads: open the process's %s namespace: %w", k.name, err)
			return
		}
		p.host = append(p.host, f)
	}
}

// serve is a builder thread's life. The thread is never unlocked and its
// goroutine never returns: the containers it cloned would get their
// parent-death signal. A thread that cannot return to the process's
// namespaces fails the build it took, stops serving and stays parked; the
// pool may make another.
func (p *builderPool) serve() {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		(<-p.work)(fmt.Errorf("builder thread: a filesystem context of its own: %w", err))
		p.retire()
	}
	for fn := range p.work {
		if err := p.rejoinHost(); err != nil {
			fn(err)
			p.retire()
		}
		fn(nil)
	}
}

// rejoinHost puts the calling builder back into the process's namespaces;
// setns of the mount namespace also sets its root and working directory
// to that namespace's root.
func (p *builderPool) rejoinHost() error {
	for i, k := range nsKinds {
		if err := unix.Setns(int(p.host[i].Fd()), k.flag); err != nil {
			return fmt.Errorf("builder thread: rejoin the process's %s namespace: %w", k.name, err)
		}
	}
	return nil
}

// retire takes the calling builder out of the pool for good and never
// returns. Its goroutine blocks forever, locked: its thread stays, so the
// containers it cloned keep their parent.
func (p *builderPool) retire() {
	p.mu.Lock()
	p.n--
	p.mu.Unlock()
	select {}
}
