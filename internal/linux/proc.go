package linux

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Stat is what stack reads of /proc/PID/stat.
type Stat struct {
	// State is field 3: R, S, D, Z (a zombie), T...
	State byte
	// PPid is field 4.
	PPid int
	// UTime and STime are fields 14 and 15, in clock ticks.
	UTime, STime uint64
	// Start is field 22: clock ticks after boot. A pid may be reused once
	// its process has died; a pid and its start time name one process.
	Start uint64
}

// ReadStat reads /proc/PID/stat; the error names the file, and wraps
// fs.ErrNotExist when the process is gone.
func ReadStat(pid int) (Stat, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return Stat{}, fmt.Errorf("read %s: %w", path, err)
	}
	st, err := parseStat(b)
	if err != nil {
		return Stat{}, fmt.Errorf("read %s: %w", path, err)
	}
	return st, nil
}

func parseStat(b []byte) (Stat, error) {
	// The command name (field 2) is in parentheses and may itself hold
	// spaces and parentheses, so the fields are counted after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3, so field N is f[N-3].
	if len(f) < 20 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("%d fields, want at least 22", len(f)+2)
	}
	st := Stat{State: f[0][0]}
	var err error
	if st.PPid, err = strconv.Atoi(f[1]); err != nil {
		return Stat{}, fmt.Errorf("parent pid: %w", err)
	}
	if st.UTime, err = strconv.ParseUint(f[11], 10, 64); err != nil {
		return Stat{}, fmt.Errorf("user time: %w", err)
	}
	if st.STime, err = strconv.ParseUint(f[12], 10, 64); err != nil {
		return Stat{}, fmt.Errorf("system time: %w", err)
	}
	if st.Start, err = strconv.ParseUint(f[19], 10, 64); err != nil {
		return Stat{}, fmt.Errorf("start time: %w", err)
	}
	return st, nil
}
