package supervisor

import (
	"os"

	"golang.org/x/sys/unix"
)

// The kernel grows a process's descriptor table by replacing it, and in a
// process with more than one thread (every Go program) it first waits for
// an RCU grace period: about 11 ms on this kind of machine, with nothing
// else for the supervisor to do meanwhile, since every thread that opens
// a descriptor waits too. A task that shares its table with no other
// grows it without that wait, and execve keeps the table it has. So up -d
// has the supervisor's table grown in the child it starts, between fork
// and execve, where the child is alone: os/exec puts the last of
// ExtraFiles at descriptor 3+len-1, and that dup is the growth. The
// supervisor then closes that spare descriptor (closeSpareDescriptor);
// its table stays, and Start's linux.ReserveDescriptors finds room.
//
// spareTable descriptors cover some 120 containers (descriptorsPerContainer
// each); a larger stack grows the table once more, as before.
const spareTable = 1024

// spareDescriptor is the descriptor up -d makes the supervisor's table
// reach: the last of spareTable, or of the open files limit if that is
// lower (up -d and the supervisor run with the same limit: the Go runtime
// of each raises the soft limit to the hard one). -1: none.
func spareDescriptor() int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return -1
	}
	n := min(uint64(spareTable), lim.Cur)
	if n <= 64 { // the table every process starts with
		return -1
	}
	return int(n) - 1
}

// spareExtraFiles returns the ExtraFiles that put a descriptor of
// /dev/null at spareDescriptor in the child, after those given (which
// take 3, 4, ...), and the file to close once the child has started. With
// no spare descriptor to make, it returns files unchanged and nil.
func spareExtraFiles(files []*os.File) ([]*os.File, *os.File) {
	fd := spareDescriptor()
	if fd < 3+len(files) {
		return files, nil
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return files, nil
	}
	// The nil entries are closed in the child: it has nothing there.
	extra := make([]*os.File, fd-3+1)
	copy(extra, files)
	extra[len(extra)-1] = null
	return extra, null
}

// closeSpareDescriptor closes the descriptor up -d left at
// spareDescriptor, if it is there and is /dev/null.
func closeSpareDescriptor() {
	fd := spareDescriptor()
	if fd < 0 {
		return
	}
	var st, null unix.Stat_t
	if unix.Fstat(fd, &st) != nil || unix.Stat(os.DevNull, &null) != nil {
		return
	}
	if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == null.Rdev {
		unix.Close(fd)
	}
}
