package image

import (
	"net/http"
	"strings"
	"testing"
)

func TestParseSource(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"nginx", "docker.io/library/nginx:latest"},
		{"nginx:1.27", "docker.io/library/nginx:1.27"},
		{"docker.io/library/redis:7", "docker.io/library/redis:7"},
		{"bitnami/redis", "docker.io/bitnami/redis:latest"},
		{"ghcr.io/o/r:v1", "ghcr.io/o/r:v1"},
		{"localhost:5000/app", "localhost:5000/app:latest"},
		{"nginx@sha256:" + strings.Repeat("a", 64), "docker.io/library/nginx@sha256:" + strings.Repeat("a", 64)},
		{"oci:img", "oci:/base/img"},
		{"oci:/abs/img:v2", "oci:/abs/img:v2"},
		{"oci-archive:../img.tar:v2", "oci-archive:/img.tar:v2"},
		{"docker-archive:img.tar", "docker-archive:/base/img.tar"},
		{"docker-archive:img.tar:localhost:5000/app:1", "docker-archive:/base/img.tar:localhost:5000/app:1"},
	} {
		src, err := ParseSource(tc.in, "/base")
		if err != nil {
			t.Errorf("ParseSource(%q): %v", tc.in, err)
			continue
		}
		if got := src.String(); got != tc.want {
			t.Errorf("ParseSource(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseSourceRefusesMalformed(t *testing.T) {
	for _, in := range []string{"", "Nginx", "nginx:", "nginx:bad tag", "a//b", "oci:", "docker-archive:x.tar:Bad", "nginx@sha256:short"} {
		if src, err := ParseSource(in, "/base"); err == nil {
			t.Errorf("ParseSource(%q) = %v, want an error", in, src)
		}
	}
}

func TestPlainHTTPOnlyOnLoopback(t *testing.T) {
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"localhost:5000", true},
		{"127.0.0.1:5000", true},
		{"127.8.9.10", true},
		{"10.1.2.3:5000", false},
		{"192.168.1.1", false},
		{"registry.example", false},
	} {
		sent := false
		rt := httpsOnly{roundTripFunc(func(*http.Request) (*http.Response, error) {
			sent = true
			return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
		})}
		req, _ := http.NewRequest(http.MethodGet, "http://"+tc.host+"/v2/", nil)
		_, err := rt.RoundTrip(req)
		if (err == nil) != tc.ok || sent != tc.ok {
			t.Errorf("plain HTTP to %s: err %v, sent %v; want allowed %v", tc.host, err, sent, tc.ok)
		}
		req, _ = http.NewRequest(http.MethodGet, "https://"+tc.host+"/v2/", nil)
		if _, err := rt.RoundTrip(req); err != nil {
			t.Errorf("HTTPS to %s: %v", tc.host, err)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
