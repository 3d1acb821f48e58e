package wireerror

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

var errSentinel = errors.New("already running")

var testKinds = Kinds{
	{"sentinel", errSentinel},
	{"permission", fs.ErrPermission},
	{"canceled", context.Canceled},
}

// TestRoundTrip: what crosses for an error comes back reading as it did
// and being, by errors.Is, the first listed kind it was, and no other.
func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		kind string
	}{
		{"each kind: sentinel", fmt.Errorf("stack %q: %w", "web", errSentinel), "sentinel"},
		{"each kind: permission", &fs.PathError{Op: "open", Path: "/state", Err: fs.ErrPermission}, "permission"},
		{"each kind: canceled", fmt.Errorf("layer: %w", context.Canceled), "canceled"},
		{"no kind", errors.New("push: refused"), ""},
		{"wrapped, two kinds: the first listed", fmt.Errorf("start: %w", errors.Join(fs.ErrPermission, fmt.Errorf("lock: %w", errSentinel))), "sentinel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := testKinds.Of(tc.err)
			if name != tc.kind {
				t.Fatalf("Of(%v) = %q, want %q", tc.err, name, tc.kind)
			}
			got := testKinds.Error(tc.err.Error(), name)
			if got.Error() != tc.err.Error() {
				t.Errorf("rebuilt error reads %q, want %q", got, tc.err)
			}
			for _, k := range testKinds {
				if is := errors.Is(got, k.Err); is != (k.Name == tc.kind) {
					t.Errorf("rebuilt error of kind %q: errors.Is(%v) = %v", tc.kind, k.Err, is)
				}
			}
		})
	}
}

// TestUnknownKind: a name the table does not hold rebuilds an error that
// reads as its message and is none of the kinds.
func TestUnknownKind(t *testing.T) {
	got := testKinds.Error("pull app: not found", "not-found")
	if got == nil || got.Error() != "pull app: not found" {
		t.Fatalf("rebuilt error %v, want one reading %q", got, "pull app: not found")
	}
	if inner := errors.Unwrap(got); inner != nil {
		t.Errorf("rebuilt error of an unknown kind unwraps to %v", inner)
	}
}

// TestNil: success is of no kind, and an error that crossed is an error
// even with no message or kind.
func TestNil(t *testing.T) {
	if name := testKinds.Of(nil); name != "" {
		t.Errorf("Of(nil) = %q, want none", name)
	}
	if got := testKinds.Error("", ""); got == nil {
		t.Error("an error rebuilt with no message is nil")
	}
}
