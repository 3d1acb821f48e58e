package manifest

import (
	"slices"
	"syscall"
	"testing"
)

func TestSplitWords(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{in: "echo hello", want: []string{"echo", "hello"}},
		{in: "  a \t b\nc  ", want: []string{"a", "b", "c"}},
		{in: `sh -c 'echo "$X"'`, want: []string{"sh", "-c", `echo "$X"`}},
		{in: `a"b c"d`, want: []string{"ab cd"}},
		{in: `"a\"b" "\$x" "\q"`, want: []string{`a"b`, "$x", `\q`}},
		{in: `back\ slash \'`, want: []string{"back slash", "'"}},
		{in: "'' \"\"", want: []string{"", ""}},
		{in: "a\\\nb", want: []string{"ab"}},
		{in: "\"a\\\nb\"", want: []string{"ab"}},
		{in: "日本 語", want: []string{"日本", "語"}},
		{in: "", want: nil},
		{in: "'open", err: true},
		{in: `"open`, err: true},
		{in: `trailing\`, err: true},
	} {
		got, err := splitWords(tc.in)
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  bool
	}{
		{in: "2000000", want: 2000000},
		{in: "64M", want: 64 << 20},
		{in: "64m", want: 64 << 20},
		{in: "64Mi", want: 64 << 20},
		{in: "64mb", want: 64 << 20},
		{in: "64MiB", want: 64 << 20},
		{in: "1k", want: 1024},
		{in: "2G", want: 2 << 30},
		{in: "1.5g", want: 3 << 29},
		{in: "1.1k", want: 1126},
		{in: "8589934591g", want: 8589934591 << 30},
		{in: "8589934592g", err: true},
		{in: "9223372036854775808", err: true},
		{in: "64X", err: true},
		{in: "64 M", err: true},
		{in: "1.5", err: true},
		{in: "-1k", err: true},
		{in: "k", err: true},
		{in: "64Tb", err: true},
	} {
		got, err := parseSize(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestDefaultName(t *testing.T) {
	for in, want := range map[string]string{
		"/home/me/Demo App":  "demo-app",
		"/srv/my_stack":      "my_stack",
		"/srv/web.v2":        "web-v2",
		"/srv/__x":           "x",
		"/srv/Ünïcode":       "n-code",
		"/":                  "stack",
		"/srv/" + long('a'):  long('a')[:63],
		"relative/dir/Stack": "stack",
	} {
		got := DefaultName(in)
		if got != want {
			t.Errorf("DefaultName(%q) = %q, want %q", in, got, want)
		}
		if err := ValidateName(got); err != nil {
			t.Errorf("DefaultName(%q) = %q, which is not a valid name: %v", in, got, err)
		}
	}
}

func long(c byte) string {
	b := make([]byte, 80)
	for i := range b {
		b[i] = c
	}
	return string(b)
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{
		"SIGTERM": syscall.SIGTERM, "TERM": syscall.SIGTERM, "KILL": syscall.SIGKILL,
		"SIGUSR1": syscall.SIGUSR1, "sigterm": 0, "SIGFOO": 0, "": 0, "SIG": 0, "15": 0,
	} {
		got, err := parseSignalName(in)
		if got != want || (err != nil) != (want == 0) {
			t.Errorf("parseSignalName(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for n, ok := range map[int64]bool{0: false, 1: true, 64: true, 65: false, -9: false} {
		if _, err := checkSignalNumber(n); (err == nil) != ok {
			t.Errorf("checkSignalNumber(%d) error = %v, want ok %v", n, err, ok)
		}
	}
}

func TestParseUser(t *testing.T) {
	for _, tc := range []struct {
		in       string
		uid, gid uint32
		err      bool
	}{
		{in: "0", uid: 0, gid: 0},
		{in: "1000:1000", uid: 1000, gid: 1000},
		{in: "1000", uid: 1000, gid: 0},
		{in: "4294967294:4294967294", uid: 4294967294, gid: 4294967294},
		{in: "4294967295", err: true},
		{in: "1000:", err: true},
		{in: ":1000", err: true},
		{in: "+1", err: true},
		{in: "www-data", err: true},
		{in: "1:2:3", err: true},
	} {
		uid, gid, err := parseUser(tc.in)
		if (err != nil) != tc.err || uid != tc.uid || gid != tc.gid {
			t.Errorf("parseUser(%q) = %d, %d, %v; want %d, %d, error %v", tc.in, uid, gid, err, tc.uid, tc.gid, tc.err)
		}
	}
}

func TestClosest(t *testing.T) {
	for in, want := range map[string]string{
		"comand": "command", "memroy": "memory", "Rootfs": "rootfs", "usr": "user",
		"imagee": "image", "x": "", "entry_point": "entrypoint", "depends-on": "depends_on",
	} {
		if got := closest(in, containerFields); got != want {
			t.Errorf("closest(%q) = %q, want %q", in, got, want)
		}
	}
}
