package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"go.yaml.in/yaml/v3"
)

// Options carry what Load needs from the stack command's world, which
// the package does not look up by itself.
type Options struct {
	// Environ is the environment ${VAR} is read from first, as KEY=VALUE
	// (os.Environ()); it wins over the .env file beside the manifest.
	Environ []string
	// Home is the invoking user's home directory, which "~" in a bind
	// mount's host path stands for; empty when unknown (a "~" is then a
	// problem).
	Home string
}

// Load reads the manifest at path and returns the validated, normalized
// stack, its variables taken from the .env file beside it alone. An
// invalid manifest yields an *Error listing every problem; a manifest that
// cannot be read yields the wrapped I/O error.
func Load(path string) (*Stack, error) {
	st, _, err := LoadWith(path, Options{})
	return st, err
}

// LoadWith is Load with the stack command's environment. Besides the stack
// it returns the warnings (a variable used without a value), located like
// problems, for the caller to print.
func LoadWith(path string, opts Options) (*Stack, []Problem, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, nil, fmt.Errorf("manifest %s: resolve path: %w", path, err)
	}
	data, err := readBounded(path, "manifest")
	if err != nil {
		return nil, nil, err
	}
	vars := variables{env: environMap(opts.Environ)}
	envFile := filepath.Join(filepath.Dir(path), dotenvName)
	dotenv, err := readBounded(envFile, dotenvName)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, nil, err
	default:
		var problems []Problem
		vars.dotenv, problems = parseDotenv(envFile, dotenv, vars.lookup)
		if len(problems) > 0 {
			return nil, nil, &Error{Problems: problems}
		}
	}
	return parse(path, abs, data, vars, opts.Home)
}

// maxManifestSize caps what is read of a manifest (and of its .env). The
// largest real ones are a few hundred KiB (500 containers); decoding costs
// some 15 times the size in memory, so the cap keeps that bounded for any
// file given.
const maxManifestSize = 4 << 20

// readBounded reads the regular file at path, up to maxManifestSize; what
// names it in errors ("manifest", ".env"). It opens without blocking, so
// that a FIFO with no writer is refused rather than waited on forever, and
// reads nothing but a regular file, so that a device (/dev/zero) cannot
// feed it without end.
func readBounded(path, what string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s %s: not a regular file (%s)", what, path, fileKind(st.Mode()))
	}
	if st.Size() > maxManifestSize {
		return nil, fmt.Errorf("read %s %s: %d bytes; a %s may have at most %d (4 MiB)", what, path, st.Size(), what, maxManifestSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if len(data) > maxManifestSize {
		// It grew while read.
		return nil, fmt.Errorf("read %s %s: more than %d bytes (4 MiB), the most a %s may have", what, path, maxManifestSize, what)
	}
	return data, nil
}

// fileKind names the type of a file that is not a regular one.
func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return m.Type().String()
}

// dotenvName is the file beside the manifest that variables come from.
const dotenvName = ".env"

// parse runs the loader's phases on the bytes of a manifest: file is how
// problems name it, abs is its absolute path, against whose directory
// relative paths are resolved; vars are the values of its variables, home
// what ~ stands for.
func parse(file, abs string, data []byte, vars variables, home string) (*Stack, []Problem, error) {
	d := &decoder{file: file, home: home}
	st := &Stack{File: abs}
	if root := d.document(data); root != nil {
		d.interpolate(root, "", &expander{lookup: vars.lookup})
		entries := d.stack(root, filepath.Dir(abs), st)
		d.link(entries)
	}
	if len(d.problems) > 0 {
		sortProblems(d.problems)
		return nil, nil, &Error{Problems: slices.Compact(d.problems)}
	}
	return st, d.warnings, nil
}

// syntaxLineRE finds the line in the parser's errors ("yaml: line 3: ...").
var syntaxLineRE = lazyRegexp(`^yaml: (?:line (\d+): )?`)

// document parses data into a node tree and returns its top mapping.
func (d *decoder) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.errorf(nil, "", "the manifest is empty: it needs at least containers")
			return nil
		}
		d.syntaxError(err)
		return nil
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			d.syntaxError(err)
		} else {
			d.errorf(&next, "", "a manifest holds one YAML document; remove everything from this one's \"---\" on")
		}
		return nil
	}
	if len(doc.Content) == 0 {
		d.errorf(&doc, "", "the manifest is empty: it needs at least containers")
		return nil
	}
	return d.expect(doc.Content[0], "", yaml.MappingNode, "a mapping with name and containers")
}

// parserProblems start the messages of libyaml's parser (not its
// scanner). yaml.v3 prints their line 0-based, the scanner's 1-based.
var parserProblems = []string{
	"did not find expected", "found duplicate %", "found incompatible YAML document", "found undefined tag handle",
}

// syntaxError turns the parser's error into a problem with its line.
func (d *decoder) syntaxError(err error) {
	msg := err.Error()
	p := Problem{File: d.file}
	if m := syntaxLineRE().FindStringSubmatch(msg); m != nil {
		msg = msg[len(m[0]):]
		if m[1] != "" {
			p.Line, _ = strconv.Atoi(m[1])
			if slices.ContainsFunc(parserProblems, func(prefix string) bool { return strings.HasPrefix(msg, prefix) }) {
				p.Line++
			}
		}
	}
	p.Msg = "invalid YAML: " + msg
	d.problems = append(d.problems, p)
}

// stack decodes the top mapping into st and returns the containers'
// entries for the checks that span containers.
func (d *decoder) stack(root *yaml.Node, dir string, st *Stack) []*entry {
	f := d.fields(root, "", []string{"name", "network", "volumes", "containers"})
	st.Name = DefaultName(dir)
	if n, ok := f["name"]; ok {
		if name, ok := d.str(n, "name"); ok {
			if err := ValidateName(name); err != nil {
				d.errorf(n, "name", "%v", err)
			}
			st.Name = name
		}
	}
	if n, ok := f["network"]; ok {
		d.stackNetwork(n, st)
	}
	// Before the containers, whose mounts name them.
	if n, ok := f["volumes"]; ok {
		st.Volumes = d.volumes(n)
	}
	n, ok := f["containers"]
	if !ok {
		d.errorf(root, "", "containers is required: a mapping of container names to definitions")
		return nil
	}
	cs := d.expect(n, "containers", yaml.MappingNode, "a mapping of container names to definitions")
	if cs == nil {
		return nil
	}
	ps := d.pairs(cs, "containers")
	if len(ps) == 0 {
		d.errorf(cs, "containers", "must define at least one container")
		return nil
	}
	st.Containers = map[string]*Container{}
	var entries []*entry
	for _, p := range ps {
		e := d.container(p.key, p.value, dir)
		st.Containers[e.c.Name] = e.c
		entries = append(entries, e)
	}
	return entries
}
