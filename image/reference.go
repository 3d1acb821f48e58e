package image

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode/utf8"
)

// A registry reference is parsed here, by hand, rather than by
// go-containerregistry's pkg/name: pkg/name and the go-digest it imports
// compile eight regular expressions in their initialisers, which every
// process of stack paid at its start. The parser accepts exactly what
// pkg/name.ParseReference accepts with its default options, normalises
// the same way, and words its errors the same (reference_test.go holds
// the two side by side); the registry client, which still takes pkg/name,
// converts in package pull.

// Docker's defaults, spelled as pkg/name spells them.
const (
	defaultRegistry = "index.docker.io"
	dockerHubAlias  = "docker.io"
	officialImages  = "library"
	defaultTag      = "latest"
)

// What a repository and a tag may hold: pkg/name's rules, looser than
// Docker's grammar (a__b, a..b and a trailing dot pass).
const (
	repositoryBytes  = "abcdefghijklmnopqrstuvwxyz0123456789_-./"
	tagBytes         = "abcdefghijklmnopqrstuvwxyz0123456789_-.ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	maxRepositoryLen = 255
	maxTagLen        = 128
)

// Reference is a registry reference with Docker's defaults filled in:
// nginx is Registry index.docker.io, Repository library/nginx, Tag latest.
type Reference struct {
	Registry   string // host[:port]; index.docker.io for Docker Hub
	Repository string // the path on the registry, library/ for official images
	// Exactly one of Tag and Digest is set: a reference with both names
	// the image by its digest alone, as pkg/name has it.
	Tag, Digest string
	// Insecure is a registry spoken to in plain HTTP (see IsLoopback).
	Insecure bool
	original string
}

// String is the reference as it was written.
func (r *Reference) String() string { return r.original }

// RepositoryName is the repository with its registry:
// index.docker.io/library/nginx.
func (r *Reference) RepositoryName() string { return r.Registry + "/" + r.Repository }

// Name is the reference in full: index.docker.io/library/nginx:latest.
func (r *Reference) Name() string {
	if r.Digest != "" {
		return r.RepositoryName() + "@" + r.Digest
	}
	return r.RepositoryName() + ":" + r.Tag
}

// ParseReference parses a registry reference with Docker's defaults
// (nginx is docker.io/library/nginx:latest). A registry on localhost or in
// 127.0.0.0/8 is spoken to in plain HTTP; every other one only in HTTPS.
func ParseReference(s string) (*Reference, error) {
	if s == "" {
		return nil, errors.New("empty image reference")
	}
	if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
		return nil, notReference(s, "image reference must not contain a URL scheme (http:// or https://): "+s)
	}
	// pkg/name tries the tag form, then the digest form, and says only
	// that neither parsed; the form the reference has says why.
	ref, err := parseTagged(s)
	if err != nil {
		var digestErr error
		if ref, digestErr = parseDigested(s); digestErr != nil {
			if strings.Contains(s, "@") {
				err = digestErr
			}
			return nil, notReference(s, err.Error())
		}
	}
	if slices.Contains(strings.Split(ref.Repository, "/"), "") {
		return nil, fmt.Errorf("%q: not an image reference: the repository %q has an empty path component", s, ref.Repository)
	}
	ref.Insecure = IsLoopback(ref.Registry)
	ref.original = s
	return ref, nil
}

// notReference words a parse error as stack always has: pkg/name's
// message without the part of the reference it appends after a colon.
func notReference(s, msg string) error {
	if i := strings.LastIndex(msg, ": "); i > 0 {
		msg = msg[:i]
	}
	return fmt.Errorf("%q: not an image reference: %s", s, msg)
}

// parseTagged parses [REGISTRY/]REPOSITORY[:TAG] (pkg/name.NewTag). The
// messages of its errors, and of those below, are pkg/name's.
func parseTagged(s string) (*Reference, error) {
	base, tag := s, ""
	// The part after the last colon is a tag unless it holds a slash:
	// then the colon was a registry's port.
	if i := strings.LastIndexByte(s, ':'); i >= 0 && !strings.Contains(s[i+1:], "/") {
		base, tag = s[:i], s[i+1:]
		if tag == "" {
			return nil, fmt.Errorf("%s must specify a tag name after the colon", s)
		}
		if err := checkElement("tag", tag, tagBytes, maxTagLen); err != nil {
			return nil, err
		}
	} else {
		tag = defaultTag
	}
	return parseRepository(base, tag, "")
}

// parseDigested parses [REGISTRY/]REPOSITORY[:TAG]@DIGEST
// (pkg/name.NewDigest), dropping the tag.
func parseDigested(s string) (*Reference, error) {
	if strings.Count(s, "@") != 1 {
		return nil, fmt.Errorf("a digest must contain exactly one '@' separator (e.g. registry/repository@digest) saw: %s", s)
	}
	base, digest, _ := strings.Cut(s, "@")
	if err := checkDigest(digest); err != nil {
		return nil, fmt.Errorf("%s: %s", err, digest)
	}
	// As pkg/name does, a base that parses as a tagged reference is
	// parsed again in full: nginx is index.docker.io/library/nginx, whose
	// repository must then fit the limit with its library/.
	if tagged, err := parseTagged(base); err == nil {
		base = tagged.RepositoryName()
	}
	return parseRepository(base, "", digest)
}

// parseRepository parses [REGISTRY/]REPOSITORY (pkg/name.NewRepository)
// into the reference to its tag or digest.
func parseRepository(s, tag, digest string) (*Reference, error) {
	if s == "" {
		return nil, errors.New("a repository name must be specified")
	}
	registry, repo := "", s
	// The first component is the registry if it looks like a host:
	// localhost, or a name with a dot or a port.
	if first, rest, ok := strings.Cut(s, "/"); ok && (first == "localhost" || strings.ContainsAny(first, ".:")) {
		registry, repo = first, rest
	}
	if err := checkElement("repository", repo, repositoryBytes, maxRepositoryLen); err != nil {
		return nil, err
	}
	if !isAuthority(registry) {
		return nil, fmt.Errorf("registries must be valid RFC 3986 URI authorities: %s", registry)
	}
	switch registry {
	case "", dockerHubAlias:
		registry = defaultRegistry
	}
	if registry == defaultRegistry && !strings.Contains(repo, "/") {
		repo = officialImages + "/" + repo
	}
	return &Reference{Registry: registry, Repository: repo, Tag: tag, Digest: digest}, nil
}

// checkElement checks that element has 1 to maxRunes characters, every
// one of them in allowed (all ASCII).
func checkElement(what, element, allowed string, maxRunes int) error {
	if n := utf8.RuneCountInString(element); n < 1 || n > maxRunes {
		return fmt.Errorf("%s must be between %d and %d characters in length: %s", what, 1, maxRunes, element)
	}
	for i := 0; i < len(element); i++ {
		if strings.IndexByte(allowed, element[i]) < 0 {
			return fmt.Errorf("%s can only contain the characters `%s`: %s", what, allowed, element)
		}
	}
	return nil
}

// go-digest's errors, which pkg/name passes on.
var (
	errDigestFormat      = errors.New("invalid checksum digest format")
	errDigestLength      = errors.New("invalid checksum digest length")
	errDigestUnsupported = errors.New("unsupported digest algorithm")
)

// digestHexLen is the length of the hex encoding of each algorithm
// go-digest knows (and pkg/name links the hashes of).
var digestHexLen = map[string]int{"sha256": 64, "sha384": 96, "sha512": 128}

// checkDigest validates ALGORITHM:ENCODED as go-digest's Digest.Validate
// does.
func checkDigest(d string) error {
	i := strings.IndexByte(d, ':')
	if i <= 0 || i+1 == len(d) {
		return errDigestFormat
	}
	algorithm, encoded := d[:i], d[i+1:]
	n, known := digestHexLen[algorithm]
	if !known {
		// go-digest's DigestRegexpAnchored:
		// [a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+
		if !isAlgorithmName(algorithm) || !allBytes(encoded, isEncodedByte) {
			return errDigestFormat
		}
		return errDigestUnsupported
	}
	if len(encoded) != n {
		return errDigestLength
	}
	if !allBytes(encoded, func(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }) {
		return errDigestFormat
	}
	return nil
}

// isAlgorithmName matches [a-z0-9]+(?:[.+_-][a-z0-9]+)*: components of
// lower-case letters and digits, one separator between two of them.
func isAlgorithmName(s string) bool {
	afterSeparator := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			afterSeparator = false
		case c == '.' || c == '+' || c == '_' || c == '-':
			if afterSeparator {
				return false
			}
			afterSeparator = true
		default:
			return false
		}
	}
	return !afterSeparator
}

func isEncodedByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '=' || c == '_' || c == '-'
}

func allBytes(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

// hostBytes are the ASCII bytes net/url takes as they are in a host
// (besides ':' before a port and the brackets of an IPv6 literal); other
// ASCII bytes, and '%' escapes, it refuses or decodes.
const hostBytes = "!\"$&'()*+,-.0123456789;<=>ABCDEFGHIJKLMNOPQRSTUVWXYZ]_abcdefghijklmnopqrstuvwxyz~"

// isAuthority reports whether registry (which holds no '/') is what
// pkg/name takes for an RFC 3986 authority: net/url parses //registry
// into the host registry, unchanged. Bytes from 0x80 up pass as they are.
func isAuthority(registry string) bool {
	if strings.Contains(registry, "[") {
		return isIPLiteral(registry)
	}
	if i := strings.LastIndexByte(registry, ':'); i >= 0 {
		if !allBytes(registry[i+1:], isDigit) {
			return false
		}
		registry = registry[:i]
	}
	return allBytes(registry, func(c byte) bool {
		return c >= 0x80 || c == ':' || strings.IndexByte(hostBytes, c) >= 0
	})
}

// isIPLiteral reports whether s is [IPv6][:PORT] the way net/url takes it:
// an IPv6 address, with no zone (which would have to be %-escaped), and
// not an IPv4 one.
func isIPLiteral(s string) bool {
	if strings.LastIndexByte(s, '[') != 0 {
		return false
	}
	end := strings.LastIndexByte(s, ']')
	if end < 0 {
		return false
	}
	if port := s[end+1:]; port != "" && (port[0] != ':' || !allBytes(port[1:], isDigit)) {
		return false
	}
	host := s[1:end]
	if strings.Contains(host, "%") {
		return false
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && !addr.Is4()
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
