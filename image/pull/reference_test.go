package pull

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/stack-containers/stack/image"
)

// TestNameReference holds the conversion for the registry client to what
// stack parsed: the same image, the same kind of reference, and plain
// HTTP exactly where stack speaks it.
func TestNameReference(t *testing.T) {
	digest := "sha256:" + strings.Repeat("a", 64)
	for _, tc := range []struct {
		in, scheme string
	}{
		{"nginx", "https"},
		{"nginx:1.27", "https"},
		{"docker.io/library/nginx@" + digest, "https"},
		{"nginx:1.27@" + digest, "https"},
		{"ghcr.io/o/r:v1", "https"},
		{"localhost/app", "http"},
		{"localhost:5000/app:1", "http"},
		{"127.0.0.1:5000/app@" + digest, "http"},
		{"127.1.2.3/app", "http"},
		{strings.Repeat("a", 250) + ":t", "https"},
	} {
		ref, err := image.ParseReference(tc.in)
		if err != nil {
			t.Fatalf("ParseReference(%q): %v", tc.in, err)
		}
		got, err := nameReference(ref)
		if err != nil {
			t.Errorf("nameReference(%q): %v", tc.in, err)
			continue
		}
		if got.Name() != ref.Name() {
			t.Errorf("nameReference(%q) names %s, want %s", tc.in, got.Name(), ref.Name())
		}
		_, isDigest := got.(name.Digest)
		if isDigest != (ref.Digest != "") {
			t.Errorf("nameReference(%q) is a %T, the reference has digest %q", tc.in, got, ref.Digest)
		}
		if s := got.Context().Scheme(); s != tc.scheme {
			t.Errorf("nameReference(%q) speaks %s, want %s", tc.in, s, tc.scheme)
		}
	}
}
