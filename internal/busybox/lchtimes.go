package busybox

import (
	"time"

	"golang.org/x/sys/unix"
)

// lchtimes sets atime and mtime of p without following a final symlink.
func lchtimes(p string, t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}
