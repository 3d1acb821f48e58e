package manifest

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseDotenv(t *testing.T) {
	env := map[string]string{"FROM_ENV": "env", "BOTH": "env wins"}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	for _, tc := range []struct {
		name, in string
		want     map[string]string
	}{
		{"plain", "A=1\nB=two words\n", map[string]string{"A": "1", "B": "two words"}},
		{"comments and blank lines", "# a comment\n\n  # indented\nA=1\n", map[string]string{"A": "1"}},
		{"inline comment", "A=1 # one\nB=a#b\n", map[string]string{"A": "1", "B": "a#b"}},
		{"spaces trimmed", "  A = 1  \n", map[string]string{"A": "1"}},
		{"export prefix", "export A=1\nexport\tB=2\nexportC=3\n", map[string]string{"A": "1", "B": "2", "exportC": "3"}},
		{"empty values", "A=\nB=''\nC=\"\"\nD= # nothing\n", map[string]string{"A": "", "B": "", "C": "", "D": ""}},
		{"CRLF", "A=1\r\nB='two'\r\nC=\"3\"\r\n", map[string]string{"A": "1", "B": "two", "C": "3"}},
		{"single quotes are literal", `A='$FROM_ENV \n # not a comment'`, map[string]string{"A": `$FROM_ENV \n # not a comment`}},
		{"double quotes take escapes", `A="a\nb\t\"c\" \\ \$FROM_ENV $FROM_ENV # kept"`, map[string]string{"A": "a\nb\t\"c\" \\ $FROM_ENV env # kept"}},
		{"quoted then comment", `A="x" # c`, map[string]string{"A": "x"}},
		{"multi-line double quotes", "A=\"one\ntwo\"\nB=3\n", map[string]string{"A": "one\ntwo", "B": "3"}},
		{"multi-line single quotes", "A='one\r\ntwo'\r\n", map[string]string{"A": "one\ntwo"}},
		{"equals in value", "A=b=c\n", map[string]string{"A": "b=c"}},
		{"expanded from the environment", "A=${FROM_ENV}-x\n", map[string]string{"A": "env-x"}},
		{"expanded from earlier lines", "A=1\nB=${A}2\nC=\"$B$$\"\n", map[string]string{"A": "1", "B": "12", "C": "12$"}},
		{"environment wins in expansion", "BOTH=file\nA=$BOTH\n", map[string]string{"BOTH": "file", "A": "env wins"}},
		{"default", "A=${NOPE:-fallback}\n", map[string]string{"A": "fallback"}},
		{"last one wins", "A=1\nA=2\n", map[string]string{"A": "2"}},
		{"no final newline", "A=1", map[string]string{"A": "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, problems := parseDotenv(".env", []byte(tc.in), lookup)
			if len(problems) > 0 {
				t.Fatalf("problems: %v", problems)
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseDotenvProblems(t *testing.T) {
	lookup := func(string) (string, bool) { return "", false }
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"A=1\nnot a line\n", []string{`.env:2:1: expected KEY=VALUE, not "not a line"`}},
		{"1A=x\n", []string{`.env:1:1: "1A" is not a valid variable name: letters, digits and '_', not starting with a digit`}},
		{"A=${B:?set B}\n", []string{".env:1:3: A: required variable B is missing a value: set B"}},
		{"export A = ${\n", []string{`.env:1:12: A: invalid interpolation at character 1: "${" must be followed by a variable name (write $$ for a literal $)`}},
		{"A=\"open\nB=2\n", []string{".env:1:3: A: the quote is never closed"}},
		{"A='x' y\nB=2\n", []string{`.env:1:3: A: unexpected "y" after the closing quote`}},
	} {
		_, problems := parseDotenv(".env", []byte(tc.in), lookup)
		var got []string
		for _, p := range problems {
			got = append(got, p.String())
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseDotenv(%q):\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// writeStack writes a manifest and, when dotenv is not empty, a .env
// beside it, in a directory of their own that also holds a rootfs
// directory; it returns the manifest's path.
func writeStack(t *testing.T, manifest, dotenv string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if dotenv != "" {
		if err := os.WriteFile(filepath.Join(dir, ".env"), []byte(dotenv), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "stack.yaml")
	if err := os.WriteFile(path, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadInterpolates(t *testing.T) {
	path := writeStack(t, `name: ${NAME:-vars}
containers:
  web:
    rootfs: ${ROOTFS}
    command: ["/bin/echo", "$GREETING", "$$literal", "${FROM_FILE}", "${MISSING}", "${MISSING}"]
    env:
      QUOTED: "${MEM}"
      EMPTY: ${MISSING_TOO}
    memory: ${MEM}
    cpus: ${CPUS:-0.5}
    read_only: $RO
    restart: ${POLICY-unless-stopped}
`, "GREETING=from the file\nFROM_FILE='only in the file'\nROOTFS=./rootfs\nMEM=67108864\n")
	st, warnings, err := LoadWith(path, Options{Environ: []string{"GREETING=from the environment", "RO=true", "NOT_A_PAIR"}})
	if err != nil {
		t.Fatal(err)
	}
	c := st.Containers["web"]
	wantCmd := []string{"/bin/echo", "from the environment", "$literal", "only in the file", "", ""}
	switch {
	case st.Name != "vars":
		t.Errorf("name = %q", st.Name)
	case c.Rootfs != filepath.Join(filepath.Dir(path), "rootfs"):
		t.Errorf("rootfs = %q", c.Rootfs)
	case !reflect.DeepEqual(c.Command, wantCmd):
		t.Errorf("command = %q, want %q", c.Command, wantCmd)
	case c.Env["QUOTED"] != "67108864" || c.Env["EMPTY"] != "":
		t.Errorf("env = %q", c.Env)
	case c.Memory != 64<<20 || c.CPUs != 0.5 || !c.ReadOnly:
		t.Errorf("memory %d, cpus %v, read_only %v; want 64 MiB, 0.5, true", c.Memory, c.CPUs, c.ReadOnly)
	case c.Restart.Policy != RestartAlways:
		t.Errorf("restart = %q, want always", c.Restart.Policy)
	}
	var got []string
	for _, w := range warnings {
		got = append(got, strings.TrimPrefix(w.String(), path))
	}
	want := []string{
		":5:70: containers.web.command[4]: variable MISSING is not set; it stands for an empty string",
		":8:14: containers.web.env.EMPTY: variable MISSING_TOO is not set; it stands for an empty string",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings:\n got %q\nwant %q", got, want)
	}

	// What `stack config` prints loads back into the same stack, its "$"
	// kept literal, with no environment at all.
	out := printed(t, st)
	if !strings.Contains(string(out), "$$literal") {
		t.Errorf("the printed stack does not escape $:\n%s", out)
	}
	again, _, err := parse(path, path, out, variables{}, "")
	if err != nil {
		t.Fatalf("the printed stack does not load: %v\n%s", err, out)
	}
	again.File = st.File
	if !reflect.DeepEqual(again, st) {
		t.Errorf("printed and loaded again, the stack differs:\n%s\n%s", out, printed(t, again))
	}
}

func TestLoadVariableErrorsAreLocated(t *testing.T) {
	path := writeStack(t, `containers:
  web:
    rootfs: ./rootfs
    command: ["/bin/true", "${TOKEN:?set TOKEN in .env}"]
    memory: ${MEM
    stop_timeout: ${TIMEOUT}
`, "")
	_, _, err := LoadWith(path, Options{Environ: []string{"TIMEOUT=fast"}})
	var me *Error
	if !errors.As(err, &me) {
		t.Fatalf("LoadWith = %v; want an *Error", err)
	}
	want := []string{
		path + `:4:28: containers.web.command[1]: required variable TOKEN is missing a value: set TOKEN in .env`,
		path + `:5:13: containers.web.memory: invalid interpolation at character 1: "${MEM" has no closing "}" (write $$ for a literal $)`,
		// The value the variable gave is checked where it was written.
		path + `:6:19: containers.web.stop_timeout: "fast" is not a duration: use a number with a unit (ns, us, ms, s, m, h) up to 2562047h, like 10s or 500ms`,
	}
	var got []string
	for _, p := range me.Problems {
		got = append(got, p.String())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n got %q\nwant %q", got, want)
	}
}

func TestLoadDotenvProblems(t *testing.T) {
	path := writeStack(t, "containers: {web: {rootfs: ./rootfs, command: [x]}}\n", "OK=1\nbroken line\n")
	_, _, err := LoadWith(path, Options{})
	var me *Error
	if !errors.As(err, &me) || len(me.Problems) != 1 || me.Problems[0].String() != filepath.Join(filepath.Dir(path), ".env")+`:2:1: expected KEY=VALUE, not "broken line"` {
		t.Fatalf("LoadWith = %v; want the .env's line 2", err)
	}
}
