package image

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
)

// Kind is where an image comes from.
type Kind int

const (
	Registry      Kind = iota // REF
	OCILayout                 // oci:PATH[:TAG]
	OCIArchive                // oci-archive:PATH[:TAG]
	DockerArchive             // docker-archive:PATH[:REF]
)

var prefixes = map[Kind]string{
	OCILayout:     "oci:",
	OCIArchive:    "oci-archive:",
	DockerArchive: "docker-archive:",
}

// Source is a parsed image: reference.
type Source struct {
	Kind Kind
	// Ref is the registry reference (Registry), or the image named
	// inside a docker-archive (nil when the archive holds one image).
	Ref *Reference
	// Path is the layout directory or archive, absolute; Tag the image
	// named inside an OCI layout or archive ("" for its only one).
	Path, Tag string
}

// ParseSource parses what a manifest's image: says. Relative paths are
// taken against dir. It does no I/O: a well-formed source that names
// nothing is found out when it is pulled.
func ParseSource(s, dir string) (Source, error) {
	for kind, prefix := range prefixes {
		rest, ok := strings.CutPrefix(s, prefix)
		if !ok {
			continue
		}
		p, tag := splitPathTag(rest)
		if p == "" {
			return Source{}, fmt.Errorf("%q: %s needs a path", s, strings.TrimSuffix(prefix, ":"))
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		src := Source{Kind: kind, Path: filepath.Clean(p)}
		if kind != DockerArchive {
			src.Tag = tag
			return src, nil
		}
		if tag != "" {
			ref, err := ParseReference(tag)
			if err != nil {
				return Source{}, err
			}
			src.Ref = ref
		}
		return src, nil
	}
	ref, err := ParseReference(s)
	if err != nil {
		return Source{}, err
	}
	return Source{Kind: Registry, Ref: ref}, nil
}

// splitPathTag splits PATH[:TAG] at its first colon, as skopeo does: a
// docker-archive's reference may have colons of its own (host:port/repo:tag).
func splitPathTag(s string) (string, string) {
	p, tag, _ := strings.Cut(s, ":")
	return p, tag
}

// IsLoopback reports whether a registry (host[:port]) is on localhost or
// 127.0.0.0/8, the only ones plain HTTP is spoken to.
func IsLoopback(registry string) bool {
	host := registry
	if h, _, err := net.SplitHostPort(registry); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.To4() != nil && ip.To4()[0] == 127
}

// String is the source as a user reads it, with Docker's defaults written
// out: docker.io/library/nginx:latest, oci:/abs/dir:tag.
func (s Source) String() string {
	switch s.Kind {
	case Registry:
		return Familiar(s.Ref)
	case DockerArchive:
		if s.Ref != nil {
			return prefixes[s.Kind] + s.Path + ":" + Familiar(s.Ref)
		}
		return prefixes[s.Kind] + s.Path
	default:
		if s.Tag != "" {
			return prefixes[s.Kind] + s.Path + ":" + s.Tag
		}
		return prefixes[s.Kind] + s.Path
	}
}

// Familiar writes a reference the way Docker prints it in full: the
// registry docker.io rather than go-containerregistry's index.docker.io.
func Familiar(ref *Reference) string {
	s := ref.Name()
	if rest, ok := strings.CutPrefix(s, defaultRegistry+"/"); ok {
		return "docker.io/" + rest
	}
	return s
}
