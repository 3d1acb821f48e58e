package linux

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
)

func TestParseStat(t *testing.T) {
	// A command name with blanks and parentheses, as a program may choose.
	line := "4242 (a) b (c)) S 17 4242 4242 0 -1 4194560 90 0 0 0 7 3 0 0 20 0 1 0 123456 2457600 201 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	want := Stat{State: 'S', PPid: 17, UTime: 7, STime: 3, Start: 123456}
	if st != want {
		t.Errorf("parseStat = %+v, want %+v", st, want)
	}
	for _, bad := range []string{"", "4242 no parenthesis S 1", "4242 (x) S 17 1 2"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) succeeded", bad)
		}
	}
}

func TestReadStat(t *testing.T) {
	st, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.PPid != os.Getppid() || st.Start == 0 {
		t.Errorf("ReadStat(self) = %+v; want ppid %d and a start time", st, os.Getppid())
	}
	// No pid reaches this one (pid_max is at most 2^22).
	_, err = ReadStat(1 << 30)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "/proc/1073741824/stat") {
		t.Errorf("ReadStat of no process: %v; want a not-exist error naming the file", err)
	}
}

func TestParseMountinfo(t *testing.T) {
	table := `36 35 98:0 /mnt1 /mnt\0402 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
garbage
25 1 0:22 / /sys/fs/cgroup/memory rw shared:9 - cgroup cgroup rw,memory
`
	mounts, err := ParseMountinfo(strings.NewReader(table))
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 2 {
		t.Fatalf("%d mounts, want 2: %+v", len(mounts), mounts)
	}
	m := mounts[0]
	if m.Root != "/mnt1" || m.Point != "/mnt 2" || m.FSType != "ext3" || m.Source != "/dev/root" || m.Super != "rw,errors=continue" {
		t.Errorf("first mount %+v", m)
	}
	if mounts[1].Super != "rw,memory" || !strings.HasPrefix(mounts[1].Line, "25 1 0:22") {
		t.Errorf("second mount %+v", mounts[1])
	}
}
