package image

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

// nameParseReference is ParseReference as it was when it called
// pkg/name, the behaviour ours must keep, but for one thing: a reference
// with a URL scheme, which pkg/name refuses for that alone, was worded
// with a nil error ("%!w(<nil>)") and now says why it is refused.
func nameParseReference(s string) (name.Reference, error) {
	if s == "" {
		return nil, errors.New("empty image reference")
	}
	ref, err := name.ParseReference(s)
	if err != nil {
		if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
			return nil, fmt.Errorf("%q: not an image reference: %w", s, unwrapName(err))
		}
		if strings.Contains(s, "@") {
			_, err = name.NewDigest(s)
		} else {
			_, err = name.NewTag(s)
		}
		return nil, fmt.Errorf("%q: not an image reference: %w", s, unwrapName(err))
	}
	if repo := ref.Context().RepositoryStr(); slices.Contains(strings.Split(repo, "/"), "") {
		return nil, fmt.Errorf("%q: not an image reference: the repository %q has an empty path component", s, repo)
	}
	if IsLoopback(ref.Context().RegistryStr()) {
		ref, err = name.ParseReference(s, name.Insecure)
		if err != nil {
			return nil, fmt.Errorf("%q: not an image reference: %w", s, unwrapName(err))
		}
	}
	return ref, nil
}

func unwrapName(err error) error {
	var ne *name.ErrBadName
	if errors.As(err, &ne) {
		msg := strings.TrimPrefix(ne.Error(), "could not parse reference: ")
		if i := strings.LastIndex(msg, ": "); i > 0 {
			msg = msg[:i]
		}
		return errors.New(msg)
	}
	return err
}

// sameAsName says how ParseReference(s) differs from pkg/name's parse of
// s ("" when it does not).
func sameAsName(s string) string {
	got, err := ParseReference(s)
	want, wantErr := nameParseReference(s)
	switch {
	case err != nil || wantErr != nil:
		if fmt.Sprint(err) != fmt.Sprint(wantErr) {
			return fmt.Sprintf("error %v, pkg/name's %v", err, wantErr)
		}
		return ""
	}
	wantTag, wantDigest := "", ""
	switch r := want.(type) {
	case name.Tag:
		wantTag = r.TagStr()
	case name.Digest:
		wantDigest = r.DigestStr()
	}
	for _, f := range []struct{ what, got, want string }{
		{"registry", got.Registry, want.Context().RegistryStr()},
		{"repository", got.Repository, want.Context().RepositoryStr()},
		{"tag", got.Tag, wantTag},
		{"digest", got.Digest, wantDigest},
		{"name", got.Name(), want.Name()},
		{"string", got.String(), want.String()},
		{"scheme", scheme(got), want.Context().Scheme()},
	} {
		if f.got != f.want {
			return fmt.Sprintf("%s %q, pkg/name's %q", f.what, f.got, f.want)
		}
	}
	return ""
}

// scheme is what pkg/name's Registry.Scheme would say for ref, for the
// registries stack speaks to: its httpsOnly transport refuses plain HTTP
// to the private ranges pkg/name would also use it for.
func scheme(ref *Reference) string {
	if ref.Insecure {
		return "http"
	}
	r, err := name.NewRegistry(ref.Registry)
	if err != nil {
		return "bad registry " + err.Error()
	}
	return r.Scheme()
}

var referenceCases = []string{
	"", "nginx", "nginx:1.27", "nginx:latest", "Nginx", "nginx:Latest", "nginx:", "nginx::", ":", "::", ":tag", "@", "@@",
	"docker.io/nginx", "docker.io/library/nginx", "index.docker.io/nginx", "index.docker.io/library/nginx:1",
	"docker.io", "docker.io/", "library/nginx", "bitnami/redis", "a/b/c/d", "ghcr.io/o/r:v1",
	"localhost/app", "localhost:5000/app", "localhost:5000/app:1", "localhost:/app", "localhost", "localhost:5000",
	"127.0.0.1:5000/app", "127.0.0.1/app", "127.1.2.3:80/x", "128.0.0.1:5000/app", "10.0.0.1:5000/app", "192.168.1.1/app",
	"foo.localhost:5000/app", "[::1]:5000/app", "[::1]/app", "::1/app", "[fe80::1%25en0]:5000/app", "[fe80::1%en0]/app",
	"[::ffff:127.0.0.1]:5000/app", "[127.0.0.1]:5000/app", "[::1]x/app", "[::1/app", "::1]/app", "a[::1]/app",
	"[::1]:/app", "[::1]:5000:1/app", "[]/app", "a:b:5000/app", "a:b/app", ":5000/app", "a.b:c/app", "a.b:5000:/app",
	"user@host.com/app", "host.com#x/app", "host.com?/app", "host%41.com/app", "host%2.com/app", "hôst.com/app",
	"host.com/äpp", "a.b\x00/app", "a\x7f.b/app", "a b.c/app", "a!b.c/app", "a]b.c/app",
	"a//b", "a/", "/a", "a/b/", "a.com//b", "a.com/", "a.com/b//c", "a.com/b/", "//", "/",
	"a..b", "a__b", "a--b", "-a", "a-", ".a", "a.", "_a",
	"nginx:bad tag", "nginx:a:b", "nginx:" + strings.Repeat("t", 128), "nginx:" + strings.Repeat("t", 129),
	"nginx:" + strings.Repeat("é", 100), strings.Repeat("a", 255), strings.Repeat("a", 256),
	strings.Repeat("a", 250) + ":t", strings.Repeat("a", 250) + "@sha256:" + strings.Repeat("a", 64),
	strings.Repeat("a", 247) + "@sha256:" + strings.Repeat("a", 64), strings.Repeat("a", 248) + "@sha256:" + strings.Repeat("a", 64),
	"x.io/" + strings.Repeat("a", 255), "x.io/" + strings.Repeat("a", 256),
	"nginx@sha256:" + strings.Repeat("a", 64), "nginx:1.27@sha256:" + strings.Repeat("a", 64),
	"nginx@sha256:" + strings.Repeat("a", 63), "nginx@sha256:" + strings.Repeat("a", 65), "nginx@sha256:" + strings.Repeat("A", 64),
	"nginx@sha256:short", "nginx@sha384:" + strings.Repeat("b", 96), "nginx@sha512:" + strings.Repeat("c", 128),
	"nginx@sha512:" + strings.Repeat("c", 64), "nginx@md5:abc", "nginx@sha1:abc", "nginx@SHA256:abc", "nginx@sha256",
	"nginx@sha256:", "nginx@:abc", "nginx@a+b.c_d-e:x=y", "nginx@a++b:x", "nginx@a+:x", "nginx@+a:x", "nginx@a:b:c",
	"nginx@a:b c", "nginx@a: b", "@sha256:" + strings.Repeat("a", 64), "nginx@@sha256:" + strings.Repeat("a", 64),
	"nginx@sha256:" + strings.Repeat("a", 64) + "@x", "a.com:5000/n@sha256:" + strings.Repeat("a", 64),
	"localhost:5000/n:t@sha256:" + strings.Repeat("a", 64), "Nginx:1@sha256:" + strings.Repeat("a", 64),
	"nginx:Bad Tag@sha256:" + strings.Repeat("a", 64), "a.com:5000/foo:@sha256:" + strings.Repeat("a", 64),
	"a: b", "a: b@sha256:x", "nginx:a: b", "http://nginx", "https://ghcr.io/o/r", "http://Bad", "http:/x", "ftp://x.com/a",
	"http:", "nginx@sha256:" + strings.Repeat("a", 64) + ":t", "a/b@sha256:" + strings.Repeat("a", 64),
	"docker.io/nginx@sha256:" + strings.Repeat("a", 64), "a.com/b:c/d", "a.com:5000", "a.com:5000/", "a.com:x/b",
}

func TestParseReferenceMatchesName(t *testing.T) {
	for _, s := range referenceCases {
		if diff := sameAsName(s); diff != "" {
			t.Errorf("ParseReference(%q): %s", s, diff)
		}
	}
}

func FuzzParseReferenceMatchesName(f *testing.F) {
	for _, s := range referenceCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if diff := sameAsName(s); diff != "" {
			t.Errorf("ParseReference(%q): %s", s, diff)
		}
	})
}

// TestIsAuthorityMatchesURL holds isAuthority against what pkg/name asks
// of net/url for every byte in a few positions of a host.
func TestIsAuthorityMatchesURL(t *testing.T) {
	for c := 0; c < 256; c++ {
		b := string([]byte{byte(c)})
		for _, host := range []string{b, "a" + b, b + "a", "a" + b + "b", "a" + b + ":80", "a:" + b, "[::1]" + b, "[::" + b + "]"} {
			u, err := url.Parse("//" + host)
			want := err == nil && u.Host == host
			if !strings.Contains(host, "/") && isAuthority(host) != want {
				t.Errorf("isAuthority(%q) = %v, net/url: %v", host, !want, want)
			}
		}
	}
}

func FuzzIsAuthorityMatchesURL(f *testing.F) {
	for _, s := range []string{"", "a.com", "a.com:5000", "[::1]:5000", "a:b:1", "[fe80::1%25en0]", "h%41"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		if strings.Contains(host, "/") {
			return
		}
		u, err := url.Parse("//" + host)
		if want := err == nil && u.Host == host; isAuthority(host) != want {
			t.Errorf("isAuthority(%q) = %v, net/url: %v", host, !want, want)
		}
	})
}
