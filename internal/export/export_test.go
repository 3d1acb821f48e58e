package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

// TestReplyRoundTrip: an error that crossed the pipe reads as it did,
// with its exit status, its hint and whether it was a fs.ErrPermission.
func TestReplyRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		err        error
		code       int
		hint       string
		permission bool
	}{
		{err: errors.New("push: refused"), code: 1},
		{err: fmt.Errorf("write objects: %w", fs.ErrPermission), code: 1, permission: true},
		{err: &Error{Code: 2, Err: errors.New("--namespace \"A\": bad"), Hint: "give one"}, code: 2, hint: "give one"},
	} {
		b, err := json.Marshal(ReplyOf(tc.err))
		if err != nil {
			t.Fatal(err)
		}
		var r Reply
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		got := r.Err()
		var e *Error
		if !errors.As(got, &e) {
			t.Fatalf("%v: the reply's error is %T, want an *Error", tc.err, got)
		}
		if got.Error() != tc.err.Error() || e.Code != tc.code || e.Hint != tc.hint || errors.Is(got, fs.ErrPermission) != tc.permission {
			t.Errorf("%v came back as %q, status %d, hint %q, permission %v; want status %d, hint %q, permission %v",
				tc.err, got, e.Code, e.Hint, errors.Is(got, fs.ErrPermission), tc.code, tc.hint, tc.permission)
		}
	}
	if err := ReplyOf(nil).Err(); err != nil {
		t.Errorf("the reply of success is the error %v", err)
	}
}
