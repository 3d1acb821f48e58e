package containerinit

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// lookupUser resolves "user[:group]" in the root of the calling process:
// numbers are taken as they are, names are looked up in /etc/passwd and
// /etc/group. Without a group, the user's primary group from /etc/passwd
// is used, or 0 when it has no entry there, as `docker exec -u` does.
func lookupUser(spec string) (uid, gid uint32, err error) {
	user, group, hasGroup := strings.Cut(spec, ":")
	if user == "" || (hasGroup && group == "") {
		return 0, 0, fmt.Errorf("user %q: want user[:group]", spec)
	}
	entry, found, err := findEntry("/etc/passwd", user, 2)
	if err != nil {
		return 0, 0, err
	}
	switch {
	case found:
		if uid, err = parseEntryID(entry[2]); err != nil {
			return 0, 0, fmt.Errorf("user %q: /etc/passwd: %w", user, err)
		}
		if gid, err = parseEntryID(entry[3]); err != nil {
			return 0, 0, fmt.Errorf("user %q: /etc/passwd: %w", user, err)
		}
	default:
		if uid, err = parseEntryID(user); err != nil {
			return 0, 0, fmt.Errorf("user %q: no such user in the container's /etc/passwd", user)
		}
	}
	if !hasGroup {
		return uid, gid, nil
	}
	if entry, found, err := findEntry("/etc/group", group, 2); err != nil {
		return 0, 0, err
	} else if found {
		gid, err = parseEntryID(entry[2])
		if err != nil {
			return 0, 0, fmt.Errorf("group %q: /etc/group: %w", group, err)
		}
		return uid, gid, nil
	}
	if gid, err = parseEntryID(group); err != nil {
		return 0, 0, fmt.Errorf("group %q: no such group in the container's /etc/group", group)
	}
	return uid, gid, nil
}

// findEntry returns the colon-separated fields of the line of file whose
// first field, or whose idField-th field when name is a number, is name.
// A missing file has no entries.
func findEntry(file, name string, idField int) ([]string, bool, error) {
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read the container's %s: %w", file, err)
	}
	defer f.Close()
	_, numErr := strconv.ParseUint(name, 10, 32)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 4 {
			continue
		}
		if fields[0] == name || (numErr == nil && fields[idField] == name) {
			return fields, true, nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, false, fmt.Errorf("read the container's %s: %w", file, err)
	}
	return nil, false, nil
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
