package capability

import (
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func TestNumbersMatchTheKernelHeaders(t *testing.T) {
	for name, want := range map[string]int{
		"CAP_CHOWN": unix.CAP_CHOWN, "CAP_NET_ADMIN": unix.CAP_NET_ADMIN,
		"CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN, "CAP_MKNOD": unix.CAP_MKNOD,
		"CAP_AUDIT_WRITE": unix.CAP_AUDIT_WRITE, "CAP_CHECKPOINT_RESTORE": unix.CAP_CHECKPOINT_RESTORE,
		"CAP_BPF": unix.CAP_BPF, "CAP_SYS_PTRACE": unix.CAP_SYS_PTRACE,
	} {
		if got := Number(name); got != want {
			t.Errorf("Number(%s) = %d, want %d", name, got, want)
		}
	}
	if len(names) != unix.CAP_LAST_CAP+1 {
		t.Errorf("%d names, the headers know %d", len(names), unix.CAP_LAST_CAP+1)
	}
}

func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"NET_ADMIN": "CAP_NET_ADMIN", "cap_net_admin": "CAP_NET_ADMIN",
		"Sys_Admin": "CAP_SYS_ADMIN", "all": "ALL", "ALL": "ALL",
	} {
		if got, err := Canonical(in); err != nil || got != want {
			t.Errorf("Canonical(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"NET_ADMINN", "CAP_", "", "CAP_ALL"} {
		if got, err := Canonical(bad); err == nil {
			t.Errorf("Canonical(%q) = %q, want an error", bad, got)
		}
	}
}

func TestResolve(t *testing.T) {
	def := Resolve(nil, nil)
	if len(def) != len(Default) {
		t.Fatalf("Resolve(nil, nil) = %v, want Docker's default %v", def, Default)
	}
	got := Resolve([]string{"CAP_NET_ADMIN"}, []string{"CAP_NET_RAW", "CAP_MKNOD"})
	if !slices.Contains(got, "CAP_NET_ADMIN") || slices.Contains(got, "CAP_NET_RAW") || slices.Contains(got, "CAP_MKNOD") || len(got) != len(Default)-1 {
		t.Errorf("add NET_ADMIN, drop NET_RAW and MKNOD: %v", got)
	}
	if got := Resolve([]string{"CAP_CHOWN"}, []string{All}); !slices.Equal(got, []string{"CAP_CHOWN"}) {
		t.Errorf("drop ALL, add CHOWN: %v", got)
	}
	if got := Resolve([]string{All}, []string{"CAP_SYS_ADMIN"}); len(got) != len(names)-1 || slices.Contains(got, "CAP_SYS_ADMIN") {
		t.Errorf("add ALL, drop SYS_ADMIN: %d capabilities, SYS_ADMIN in: %v", len(got), slices.Contains(got, "CAP_SYS_ADMIN"))
	}
	if m, err := Mask([]string{"CAP_CHOWN", "CAP_KILL"}); err != nil || m != 1<<unix.CAP_CHOWN|1<<unix.CAP_KILL {
		t.Errorf("Mask = %#x, %v", m, err)
	}
}
