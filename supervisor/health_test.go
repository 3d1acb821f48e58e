package supervisor

import (
	"slices"
	"strings"
	"testing"
)

func TestTailBufferKeepsTheEnd(t *testing.T) {
	b := &tailBuffer{max: 8}
	b.Write([]byte("0123456789"))
	b.Write([]byte("ab"))
	if got := b.String(); got != "456789ab" {
		t.Errorf("got %q, want the last 8 bytes", got)
	}
}

func TestOneLine(t *testing.T) {
	for in, want := range map[string]string{
		"":                           "",
		"ok\n":                       "ok",
		"  first\n\n  second  \n":    "first; second",
		"wget: can't connect\r\nx\n": "wget: can't connect; x",
	} {
		if got := oneLine(in); got != want {
			t.Errorf("oneLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMergeEnv(t *testing.T) {
	base := []string{"A=1", "B=2", "PATH=/bin"}
	got := mergeEnv(base, []string{"B=3", "C=4", "D="})
	if want := []string{"A=1", "B=3", "PATH=/bin", "C=4", "D="}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if strings.Join(base, " ") != "A=1 B=2 PATH=/bin" {
		t.Errorf("mergeEnv changed its base: %v", base)
	}
}
