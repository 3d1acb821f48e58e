package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
)

// errLocked means another process holds the stack's lock: a supervisor is
// alive, or a down is cleaning up.
var errLocked = errors.New("stack is locked by another process")

// stackLock is the flock on a stack's lock file. The live supervisor holds
// it for its whole life, so the kernel releases it whatever way the
// supervisor ends: holding it proves no supervisor is alive.
type stackLock struct {
	f    *os.File
	path string
}

// tryLock takes the lock of the stack whose state lives in dir, creating
// dir if needed, or returns errLocked at once.
func tryLock(dir string) (*stackLock, error) {
	path := filepath.Join(dir, lockFile)
	for {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create state directory %s: %w", dir, err)
		}
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if errors.Is(err, os.ErrNotExist) {
			continue // a down removed dir between the two calls
		}
		if err != nil {
			return nil, fmt.Errorf("open lock file %s: %w", path, err)
		}
		err = linux.IgnoringEINTR(func() error { return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) })
		if errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, errLocked
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		// The previous holder may have removed the file after this open and
		// before this flock: the lock then guards an unlinked inode that
		// nobody else will ever find, so it is only kept if the path still
		// names the locked file.
		if samePath(f, path) {
			return &stackLock{f: f, path: path}, nil
		}
		f.Close()
	}
}

// waitLock takes the lock, waiting for its holder to release it until ctx
// ends.
func waitLock(ctx context.Context, dir string) (*stackLock, error) {
	for {
		l, err := tryLock(dir)
		if !errors.Is(err, errLocked) {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for the lock of %s: %w", dir, context.Cause(ctx))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// samePath reports whether path still names the open file f.
func samePath(f *os.File, path string) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	pi, err := os.Stat(path)
	return err == nil && os.SameFile(fi, pi)
}

// release drops the lock, leaving the file for the next holder.
func (l *stackLock) release() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("release lock %s: %w", l.path, err)
	}
	return nil
}

// removeAndRelease deletes the lock file, then drops the lock. The order
// matters: a process that opened the file before its removal finds it
// unlinked once it gets the lock, and starts over (see tryLock).
func (l *stackLock) removeAndRelease() error {
	if err := os.Remove(l.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		l.f.Close()
		return fmt.Errorf("remove lock file %s: %w", l.path, err)
	}
	return l.release()
}
