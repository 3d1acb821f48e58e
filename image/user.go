package image

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
)

// LookupUser resolves a container's user, as Docker does: "" is 0:0; a
// name is found in the root's /etc/passwd, and gives its primary group
// unless a group follows the colon; a group name is found in /etc/group;
// a lone uid takes the primary group of its passwd entry, if it has one.
// The root is layers, bottom first (one directory for a rootfs): a file
// is read from the topmost layer that has it, and a whiteout there hides
// the layers below.
func LookupUser(layers []string, user string) (uid, gid uint32, err error) {
	if user == "" {
		return 0, 0, nil
	}
	u, g, hasGroup := strings.Cut(user, ":")
	var passwd [][]string
	if !isNumeric(u) || !hasGroup {
		if passwd, err = readDB(layers, "etc/passwd"); err != nil {
			return 0, 0, err
		}
	}
	if isNumeric(u) {
		uid, err = parseUint32(u)
		if err != nil {
			return 0, 0, fmt.Errorf("user %q: %w", user, err)
		}
		for _, e := range passwd {
			if len(e) > 3 && e[2] == u {
				if gid, err = parseUint32(e[3]); err != nil {
					return 0, 0, fmt.Errorf("user %q: /etc/passwd: gid %q of %s: %w", user, e[3], e[0], err)
				}
				break
			}
		}
	} else {
		found := false
		for _, e := range passwd {
			if len(e) > 3 && e[0] == u {
				if uid, err = parseUint32(e[2]); err == nil {
					gid, err = parseUint32(e[3])
				}
				if err != nil {
					return 0, 0, fmt.Errorf("user %q: /etc/passwd: entry of %s: %w", user, u, err)
				}
				found = true
				break
			}
		}
		if !found {
			return 0, 0, fmt.Errorf("user %q: no user %s in the container's /etc/passwd", user, u)
		}
	}
	if !hasGroup {
		return uid, gid, nil
	}
	if isNumeric(g) {
		gid, err = parseUint32(g)
		if err != nil {
			return 0, 0, fmt.Errorf("user %q: %w", user, err)
		}
		return uid, gid, nil
	}
	groups, err := readDB(layers, "etc/group")
	if err != nil {
		return 0, 0, err
	}
	for _, e := range groups {
		if len(e) > 2 && e[0] == g {
			if gid, err = parseUint32(e[2]); err != nil {
				return 0, 0, fmt.Errorf("user %q: /etc/group: entry of %s: %w", user, g, err)
			}
			return uid, gid, nil
		}
	}
	return 0, 0, fmt.Errorf("user %q: no group %s in the container's /etc/group", user, g)
}

func isNumeric(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }

func parseUint32(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 1<<32-1 {
		return 0, fmt.Errorf("%q is not an id in 0..4294967294", s)
	}
	return uint32(n), nil
}

// readDB reads a colon-separated file (passwd, group) of the root made of
// layers, split into fields; a root without the file has no entries.
func readDB(layers []string, name string) ([][]string, error) {
	data, err := readInLayers(layers, name)
	if err != nil {
		return nil, fmt.Errorf("read /%s: %w", name, err)
	}
	var entries [][]string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		entries = append(entries, strings.Split(line, ":"))
	}
	return entries, sc.Err()
}

// maxDBSize bounds what is read of a passwd or group file.
const maxDBSize = 4 << 20

// readInLayers reads name (a path without a leading /) from the topmost
// layer that has it, resolved inside that layer; nil when no layer has it
// or a whiteout or opaque directory hides it.
func readInLayers(layers []string, name string) ([]byte, error) {
	for i := len(layers) - 1; i >= 0; i-- {
		root, err := unix.Open(layers[i], unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: layers[i], Err: err}
		}
		data, found, hidden, err := readInLayer(root, name)
		unix.Close(root)
		if err != nil || found {
			return data, err
		}
		if hidden {
			return nil, nil
		}
	}
	return nil, nil
}

func readInLayer(root int, name string) (data []byte, found, hidden bool, err error) {
	var st unix.Stat_t
	if err := unix.Fstatat(root, name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
			return nil, false, true, nil
		}
		fd, err := linux.OpenInRoot(root, name, unix.O_RDONLY|unix.O_NONBLOCK)
		if err != nil {
			return nil, false, false, err
		}
		f := os.NewFile(uintptr(fd), name)
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, maxDBSize))
		return data, true, false, err
	} else if !errors.Is(err, unix.ENOENT) {
		return nil, false, false, err
	}
	// Not in this layer: an opaque or whited-out parent hides the
	// layers below as well.
	dir := name
	for {
		i := strings.LastIndex(dir, "/")
		if i < 0 {
			return nil, false, false, nil
		}
		dir = dir[:i]
		if err := unix.Fstatat(root, dir, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue
		}
		if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
			return nil, false, true, nil
		}
		fd, err := unix.Openat(root, dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		buf := make([]byte, 1)
		_, xerr := unix.Fgetxattr(fd, opaqueXattrs[0], buf)
		unix.Close(fd)
		if xerr == nil && buf[0] == 'y' {
			return nil, false, true, nil
		}
	}
}
