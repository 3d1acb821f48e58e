package manifest

import (
	"fmt"
	"math"
	"math/big"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// lazyRegexp compiles pattern on first use. The stack binary is also every
// container's init, which never loads a manifest: compiling at package
// initialisation would cost each container start for nothing.
func lazyRegexp(pattern string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(pattern) })
}

// nameRE is the form of stack and container names: it keeps them usable as
// directory and cgroup names and in log prefixes.
var nameRE = lazyRegexp(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidateName reports whether name can name a stack or a container.
func ValidateName(name string) error {
	if !nameRE().MatchString(name) {
		return fmt.Errorf("invalid name %q: use 1 to 63 lower-case letters, digits, '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// DefaultName is the name of a stack whose manifest in dir gives none: the
// directory's name lower-cased, with every character a name cannot hold
// replaced by '-', leading '-' and '_' dropped, cut to 63 characters, and
// "stack" when nothing is left.
func DefaultName(dir string) string {
	base := strings.ToLower(path.Base(strings.ReplaceAll(dir, "\\", "/")))
	var b strings.Builder
	for _, r := range base {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	name := strings.TrimLeft(b.String(), "-_")
	if len(name) > 63 {
		name = name[:63]
	}
	if name == "" {
		return "stack"
	}
	return name
}

// envNameRE is what a shell accepts as a variable name.
var envNameRE = lazyRegexp(`^[A-Za-z_][A-Za-z0-9_]*$`)

// hostLabelRE is one RFC 1123 label.
var hostLabelRE = lazyRegexp(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// maxHostname is the kernel's HOST_NAME_MAX: sethostname(2) refuses longer
// names, stricter than RFC 1123's 253.
const maxHostname = 64

func checkHostname(h string) error {
	if len(h) > maxHostname {
		return fmt.Errorf("hostname %q is longer than %d characters", h, maxHostname)
	}
	for _, label := range strings.Split(h, ".") {
		if !hostLabelRE().MatchString(label) {
			return fmt.Errorf("%q is not an RFC 1123 hostname: dot-separated labels of letters, digits and '-', not starting or ending with '-'", h)
		}
	}
	return nil
}

// sizeRE is a memory size: whole bytes, or a number with a k, m or g suffix
// that may be followed by "i", "b" or "ib" in any case ("64M", "64Mi",
// "64mb" and "64MiB" are the same).
var sizeRE = lazyRegexp(`^([0-9]+)$|^([0-9]+(?:\.[0-9]+)?)([kKmMgG])[iI]?[bB]?$`)

// ParseSize reads a size as the manifest's memory takes it ("64M",
// "2000000"), for the settings outside it that take one
// (STACK_UNPACK_LIMIT).
func ParseSize(s string) (int64, error) { return parseSize(s) }

// parseSize reads a size. A fraction is allowed with a suffix ("1.5g") and
// the result is rounded down to whole bytes.
func parseSize(s string) (int64, error) {
	m := sizeRE().FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a size: use bytes (2000000) or a number with k, m or g (64M)", s)
	}
	if m[1] != "" {
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is too large", s)
		}
		return n, nil
	}
	r, ok := new(big.Rat).SetString(m[2])
	if !ok {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	shift := map[string]uint{"k": 10, "m": 20, "g": 30}[strings.ToLower(m[3])]
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), shift)))
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if !n.IsInt64() {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n.Int64(), nil
}

// maxSignal is the kernel's _NSIG - 1 (SIGRTMAX) on Linux.
const maxSignal = 64

// parseSignalName reads a signal name as SPEC.md writes them, "SIGTERM" or
// "TERM", in upper case like kill(1) prints them.
func parseSignalName(s string) (syscall.Signal, error) {
	withSIG := func(name string) string {
		if strings.HasPrefix(name, "SIG") {
			return name
		}
		return "SIG" + name
	}
	if sig := unix.SignalNum(withSIG(s)); sig != 0 {
		return sig, nil
	}
	if upper := strings.ToUpper(s); unix.SignalNum(withSIG(upper)) != 0 {
		return 0, fmt.Errorf("unknown signal %q (signal names are upper case: %q)", s, upper)
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

func checkSignalNumber(n int64) (syscall.Signal, error) {
	if n < 1 || n > maxSignal {
		return 0, fmt.Errorf("signal %d is out of range 1..%d", n, maxSignal)
	}
	return syscall.Signal(n), nil
}

// signalNames lists the names parseSignalName accepts, with and without the
// SIG prefix; schema.json's enum is tested against it.
func signalNames() []string {
	var names []string
	for n := 1; n <= maxSignal; n++ {
		if name := unix.SignalName(syscall.Signal(n)); name != "" {
			names = append(names, name, strings.TrimPrefix(name, "SIG"))
		}
	}
	return names
}

// formatSignal is the inverse of parsing: a name where the signal has one,
// else its number.
func formatSignal(sig syscall.Signal) any {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return int(sig)
}

// parseDuration reads a Go duration ("10s", "1m30s"), refusing negative ones.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: use a number with a unit (ns, us, ms, s, m, h) up to 2562047h, like 10s or 500ms", s)
	}
	if d < 0 || strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return d, nil
}

// maxID is the largest usable uid or gid: (uid_t)-1 means "no change" to
// the kernel's set*id calls.
const maxID = math.MaxUint32 - 1

// parseUser reads a numeric "uid[:gid]"; gid is 0 when left out, as
// `docker run --user` does when there is no passwd entry to look up.
func parseUser(s string) (uid, gid uint32, err error) {
	u, g, hasGID := strings.Cut(s, ":")
	if !isDigits(u) || (hasGID && !isDigits(g)) {
		return 0, 0, fmt.Errorf("%q is neither uid[:gid] nor user[:group] (names of letters, digits, '_', '-' and '.')", s)
	}
	if uid, err = parseID(u); err != nil {
		return 0, 0, fmt.Errorf("uid %w", err)
	}
	if hasGID {
		if gid, err = parseID(g); err != nil {
			return 0, 0, fmt.Errorf("gid %w", err)
		}
	}
	return uid, gid, nil
}

// checkUserNames accepts user[:group] where at least one part is a name
// (and the other a name or a number), the form looked up in the
// container's /etc/passwd and /etc/group.
func checkUserNames(s string) error {
	u, g, hasGroup := strings.Cut(s, ":")
	if !isUserName(u) && !isDigits(u) || hasGroup && !isUserName(g) && !isDigits(g) {
		return fmt.Errorf("%q is not user[:group]", s)
	}
	if isDigits(u) && (!hasGroup || isDigits(g)) {
		return fmt.Errorf("%q has no name", s)
	}
	return nil
}

// isUserName reports whether s can be a user or group name: what
// shadow's useradd accepts, without a leading '-' or digit.
func isUserName(s string) bool {
	if s == "" || len(s) > 256 || s[0] == '-' || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-$") == ""
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// parseID reads a uid or gid made of digits only.
func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > maxID {
		return 0, fmt.Errorf("%s is out of range 0..%d", s, uint32(maxID))
	}
	return uint32(n), nil
}

// cleanAbs checks that p is an absolute path usable by the kernel and
// returns it cleaned.
func cleanAbs(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%q is not an absolute path", p)
	}
	if strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("%q contains a NUL byte", p)
	}
	return path.Clean(p), nil
}
