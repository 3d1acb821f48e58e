package containerinit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
)

// identity is who a process runs as.
type identity struct {
	uid, gid uint32
	// groups are the supplementary groups, sorted, gid among them.
	groups []uint32
}

// ngroupsMax is the kernel's NGROUPS_MAX: setgroups refuses a longer list.
const ngroupsMax = 65536

// maxLine bounds a line of /etc/passwd or /etc/group, as runc's parser
// does: a group's member list may be long, but a line that does not end
// within a MiB is not one.
const maxLine = 1 << 20

// identityOf is who p runs as: its User looked up in the root of the
// calling process, which is the container's by now, or, when it has none,
// its UID and GID.
func identityOf(p *Process) (identity, error) {
	if p.User == "" {
		return identity{uid: p.UID, gid: p.GID, groups: []uint32{p.GID}}, nil
	}
	root, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return identity{}, fmt.Errorf("open the container's root: %w", err)
	}
	defer unix.Close(root)
	return lookupUser(root, p.User)
}

// lookupUser resolves "user[:group]" in the directory root: numbers are
// taken as they are, names are looked up in its /etc/passwd and
// /etc/group. Without a group, the user's primary group from /etc/passwd
// is used, or 0 when it has no entry there, as `docker exec -u` does.
//
// The supplementary groups are Docker's (moby's getUser on runc's
// GetExecUser): the primary group, and, when no group was given and the
// user has an entry in /etc/passwd, every group of /etc/group whose member
// list names that entry's user. An explicit group is the only one; a uid
// without an entry has no name to be a member by.
func lookupUser(root int, spec string) (identity, error) {
	user, group, hasGroup := strings.Cut(spec, ":")
	if user == "" || (hasGroup && group == "") {
		return identity{}, fmt.Errorf("user %q: want user[:group]", spec)
	}
	var id identity
	entry, found, err := findEntry(root, "/etc/passwd", user, 2)
	if err != nil {
		return identity{}, err
	}
	switch {
	case found:
		if id.uid, err = parseEntryID(entry[2]); err != nil {
			return identity{}, fmt.Errorf("user %q: /etc/passwd: %w", user, err)
		}
		if id.gid, err = parseEntryID(entry[3]); err != nil {
			return identity{}, fmt.Errorf("user %q: /etc/passwd: %w", user, err)
		}
	default:
		if id.uid, err = parseEntryID(user); err != nil {
			return identity{}, fmt.Errorf("user %q: no such user in the container's /etc/passwd", user)
		}
	}
	if hasGroup {
		if id.gid, err = lookupGroup(root, group); err != nil {
			return identity{}, err
		}
	}
	id.groups = []uint32{id.gid}
	if found && !hasGroup {
		if id.groups, err = memberships(root, "/etc/group", entry[0], id.groups); err != nil {
			return identity{}, fmt.Errorf("user %q: %w", user, err)
		}
	}
	return id, nil
}

// lookupGroup resolves a group's name or number in root's /etc/group.
func lookupGroup(root int, group string) (uint32, error) {
	entry, found, err := findEntry(root, "/etc/group", group, 2)
	if err != nil {
		return 0, err
	}
	if found {
		gid, err := parseEntryID(entry[2])
		if err != nil {
			return 0, fmt.Errorf("group %q: /etc/group: %w", group, err)
		}
		return gid, nil
	}
	gid, err := parseEntryID(group)
	if err != nil {
		return 0, fmt.Errorf("group %q: no such group in the container's /etc/group", group)
	}
	return gid, nil
}

// memberships adds to groups the gid of every entry of file whose member
// list names user, and returns them sorted, each once. Entries whose gid
// is not one are skipped, as malformed lines are; more groups than the
// kernel takes is an error rather than a list cut short, and stops the
// reading there.
func memberships(root int, file, user string, groups []uint32) ([]uint32, error) {
	distinct := func() {
		slices.Sort(groups)
		groups = slices.Compact(groups)
	}
	err := eachEntry(root, file, func(fields []string) bool {
		if !slices.Contains(strings.Split(fields[3], ","), user) {
			return true
		}
		gid, err := parseEntryID(fields[2])
		if err != nil {
			return true
		}
		groups = append(groups, gid)
		// The same group listed again counts once. Sorting only once
		// the list has doubled keeps a file of many repeated lines
		// from costing a sort per line, and the list within twice the
		// limit.
		if len(groups) > 2*ngroupsMax {
			distinct()
			return len(groups) <= ngroupsMax
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	distinct()
	if len(groups) > ngroupsMax {
		return nil, fmt.Errorf("a member of more than %d groups in the container's %s, the most the kernel allows", ngroupsMax, file)
	}
	return groups, nil
}

// findEntry returns the colon-separated fields of the line of file whose
// first field, or whose idField-th field when name is a number, is name.
// A missing file has no entries.
func findEntry(root int, file, name string, idField int) ([]string, bool, error) {
	_, numErr := strconv.ParseUint(name, 10, 32)
	var entry []string
	err := eachEntry(root, file, func(fields []string) bool {
		if fields[0] == name || (numErr == nil && fields[idField] == name) {
			entry = fields
			return false
		}
		return true
	})
	return entry, entry != nil, err
}

// eachEntry calls fn with the fields of each line of file in root that has
// the four of /etc/group (passwd has more), until fn returns false; other
// lines are skipped, and so are comments, as glibc and runc skip them. A
// missing file has no lines.
//
// The file is opened inside root with no magic link followed (OpenInRoot),
// so that a link to /proc/PID/root cannot lead out of the container to
// the host's files, and it must be a regular file: a FIFO or a device in
// its place would block the process, or never end.
func eachEntry(root int, file string, fn func(fields []string) bool) error {
	fd, err := linux.OpenInRoot(root, file, unix.O_RDONLY|unix.O_NONBLOCK)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the container's %s: %w", file, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("read the container's %s: %w", file, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("read the container's %s: not a regular file", file)
	}
	sc := bufio.NewScanner(fdReader(fd))
	sc.Buffer(nil, maxLine)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, ":")
		if len(fields) < 4 {
			continue
		}
		if !fn(fields) {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read the container's %s: %w", file, err)
	}
	return nil
}

// fdReader reads a descriptor with read(2) itself: an *os.File would
// start the runtime's poller in the init for a file it cannot poll.
type fdReader int

func (fd fdReader) Read(b []byte) (int, error) {
	n, err := linux.IgnoringEINTRN(func() (int, error) { return unix.Read(int(fd), b) })
	switch {
	case err != nil:
		return 0, err
	case n == 0 && len(b) > 0:
		return 0, io.EOF
	}
	return n, nil
}

func parseEntryID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > maxID {
		return 0, fmt.Errorf("%q is not a uid or gid", s)
	}
	return uint32(n), nil
}

// maxID is the largest usable uid or gid: (uid_t)-1 means "no change" to
// the kernel's set*id calls.
const maxID = 1<<32 - 2
