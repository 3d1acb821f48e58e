package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// variablesManifest uses every form of variable; .env and the environment
// of the test give the values.
const variablesManifest = `name: ${STACK_NAME:-vars}
containers:
  app:
    rootfs: ./rootfs
    command: ["/bin/echo", "$GREETING", "$${LITERAL}", "${UNSET_IN_TEST}"]
    env:
      USER_NAME: ${DB_USER}
      PASSWORD: "${DB_PASSWORD:?put DB_PASSWORD in .env}"
    memory: ${MEM:-32M}
    restart: unless-stopped
`

const variablesDotenv = "# settings\r\nexport DB_USER=app\r\nDB_PASSWORD='s3cret$'\r\nGREETING=\"from .env\"\r\nMEM= # empty, so the default applies\r\n"

func TestConfigInterpolatesFromEnvironmentAndDotenv(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"stack.yaml": variablesManifest, ".env": variablesDotenv, "rootfs/": ""})
	r := invocation{dir: dir, env: []string{"GREETING=from the environment", "STACK_NAME=vars-env"}}.run(t, "config")
	r.expect(t, 0,
		"stdout", "^name: vars-env$",
		// The environment wins over .env.
		"stdout", "^      - from the environment$",
		// $$ is a literal $, and is printed as $$ again so that the
		// output loads the same.
		"stdout", `^      - \$\$\{LITERAL\}$`,
		"stdout", `^      PASSWORD: s3cret\$\$$`,
		"stdout", "^      USER_NAME: app$",
		"stdout", "^    memory: 33554432$",
		"stdout", "^      policy: always$",
		"stderr", `^stack: warning: stack.yaml:5:56: containers.app.command\[3\]: variable UNSET_IN_TEST is not set; it stands for an empty string$`,
	)
	// Printed and loaded again (without .env or the environment), the
	// stack is the same.
	again := t.TempDir()
	writeFiles(t, again, map[string]string{"stack.yaml": r.stdout})
	if r2 := stack(t, again, "config"); r2.code != 0 || r2.stdout != r.stdout || r2.stderr != "" {
		t.Errorf("the printed manifest loads differently (exit %d, stderr %q):\n%s\nwant:\n%s", r2.code, r2.stderr, r2.stdout, r.stdout)
	}
}

func TestRequiredVariableRefusesUp(t *testing.T) {
	e := newEnv(t)
	if err := os.Mkdir(filepath.Join(e.Dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.manifest(variablesManifest)
	// No .env: DB_PASSWORD has no value.
	for _, args := range [][]string{{"up"}, {"up", "-d"}, {"config"}} {
		r := e.Run(args...)
		want := "stack: error: invalid manifest (1 problem):\nstack.yaml:8:17: containers.app.env.PASSWORD: required variable DB_PASSWORD is missing a value: put DB_PASSWORD in .env\n"
		if r.Code != 2 || r.Stdout != "" || !strings.HasSuffix(r.Stderr, want) {
			t.Errorf("stack %v: exit %d, stdout %q, stderr:\n%s\nwant exit 2 and a stderr ending in:\n%s", args, r.Code, r.Stdout, r.Stderr, want)
		}
		e.AssertNothingLeft()
	}
}
