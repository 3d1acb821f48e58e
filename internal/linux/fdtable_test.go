package linux

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// fdSize is the size of the process's descriptor table (FDSize in
// /proc/self/status).
func fdSize(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "FDSize:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no FDSize in /proc/self/status")
	return 0
}

func TestReserveDescriptorsGrowsTheTable(t *testing.T) {
	want := fdSize(t) + 300
	if err := ReserveDescriptors(want); err != nil {
		t.Fatal(err)
	}
	if got := fdSize(t); got < want {
		t.Errorf("descriptor table of %d after reserving %d", got, want)
	}
	// A second time changes nothing: the table never shrinks.
	before := fdSize(t)
	if err := ReserveDescriptors(want); err != nil {
		t.Fatal(err)
	}
	if got := fdSize(t); got != before {
		t.Errorf("descriptor table went from %d to %d on a second reservation", before, got)
	}
}
