package linux

import "testing"

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/sys/fs/cgroup/memory`:      `/sys/fs/cgroup/memory`,
		`/mnt/my\040cgroups\134x`:    `/mnt/my cgroups\x`,
		`/tmp/a\011tab\012nl`:        "/tmp/a\ttab\nnl",
		`/tmp/quote"d\040and\\short`: `/tmp/quote"d and\\short`,
		`/tmp/end\04`:                `/tmp/end\04`,
	} {
		if got := UnescapeMountinfo(in); got != want {
			t.Errorf("UnescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}
