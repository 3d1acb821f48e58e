package linux

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// UnescapeMountinfo undoes the octal escapes (\040 for a space, \134 for a
// backslash) that the kernel writes for white space and backslashes in the
// paths of /proc/PID/mountinfo.
func UnescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Mount is one line of /proc/PID/mountinfo, its paths unescaped:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//	ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
type Mount struct {
	// Root is the path within the filesystem that is mounted; Point, where.
	Root, Point string
	FSType      string
	Source      string
	// Super holds the superblock options (a v1 cgroup's controllers).
	Super string
	// Line is the line as the kernel wrote it.
	Line string
}

// ParseMountinfo reads a mountinfo table; lines it cannot make sense of are
// skipped.
func ParseMountinfo(r io.Reader) ([]Mount, error) {
	var mounts []Mount
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if sep < 5 || len(fields) < sep+4 {
			continue
		}
		mounts = append(mounts, Mount{
			Root:   UnescapeMountinfo(fields[3]),
			Point:  UnescapeMountinfo(fields[4]),
			FSType: fields[sep+1],
			Source: UnescapeMountinfo(fields[sep+2]),
			Super:  fields[sep+3],
			Line:   sc.Text(),
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return mounts, nil
}

// Mounts reads the mount table of the calling process's mount namespace.
func Mounts() ([]Mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	return ParseMountinfo(f)
}
