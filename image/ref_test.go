package image

import (
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
