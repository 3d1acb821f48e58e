package runtime

import (
	"testing"

	"github.com/stack-containers/stack/internal/testenv"
)

func TestUserNamespace(t *testing.T) {
	testenv.RequireRoot(t)
	spec := newSpec(t, testenv.BusyboxRootfs(t), "sh", "-c", `
		cat /proc/self/uid_map | tr -s ' '
		echo x > /tmp/f && cat /tmp/f
		wc -c < /dev/null; ls /sys/class/net`)
	spec.Namespaces = append(spec.Namespaces, "user")
	out, st := run(t, spec)
	if want := " 0 0 4294967295\nx\n0\nlo\n"; st.Code != 0 || out != want {
		t.Errorf("exit %+v, output:\n%q\nwant:\n%q", st, out, want)
	}
}
