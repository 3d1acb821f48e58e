package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

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

// The roles a lock's holder records in the lock file.
const (
	roleSupervisor = "supervisor" // up, from its start to its end
	roleDown       = "down"       // a down, while it clears the stack
)

// lockHolder is what the holder of a lock writes into the lock file once
// it has the lock, so that a down can tell whom to stop even before the
// holder has written a state file (or while it clears an earlier run's,
// which names an earlier supervisor).
type lockHolder struct {
	Process
	Role string `json:"role"`
}

// tryLock takes the lock of the stack whose state lives in dir, creating
// dir if needed, and records this process in it as role; or it returns
// errLocked at once.
func tryLock(dir, role string) (*stackLock, error) {
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
			l := &stackLock{f: f, path: path}
			l.record(role)
			return l, nil
		}
		f.Close()
	}
}

// record writes this process and role into the lock file. It is the
// holder's only write there, so a reader sees it whole, or an empty or
// partial file which it takes for a holder not known yet. It is best
// effort: on a full disk a down must still work, and the holder is then
// found through the state file as a down always found it before.
func (l *stackLock) record(role string) {
	self, err := processOf(os.Getpid())
	if err != nil {
		return
	}
	b, err := json.Marshal(lockHolder{Process: self, Role: role})
	if err != nil {
		return
	}
	if l.f.Truncate(0) == nil {
		l.f.WriteAt(b, 0)
	}
}

// readHolder returns the live holder that the lock file in dir names. It
// reports false when the file names none, or a process that has ended (a
// holder killed before the new one recorded itself).
func readHolder(dir string) (lockHolder, bool) {
	b, err := os.ReadFile(filepath.Join(dir, lockFile))
	if err != nil {
		return lockHolder{}, false
	}
	var h lockHolder
	if json.Unmarshal(b, &h) != nil || !h.Alive() {
		return lockHolder{}, false
	}
	return h, true
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
