package main

import (
	"os"
	"os/user"
	"testing"

	"github.com/stack-containers/stack/internal/testenv"
	"github.com/stack-containers/stack/supervisor"
)

func TestInvokerThroughSudo(t *testing.T) {
	// sudo's variables count only for root.
	testenv.RequireRoot(t)
	root, err := user.LookupId("0")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SUDO_UID", "1234")
	t.Setenv("SUDO_GID", "5678")
	t.Setenv("SUDO_USER", root.Username)
	t.Setenv("HOME", "/not/the/home")
	if got, want := invoker(), (supervisor.Owner{UID: 1234, GID: 5678}); got != want {
		t.Errorf("invoker() = %+v, want %+v", got, want)
	}
	if got := invokerHome(); got != root.HomeDir {
		t.Errorf("invokerHome() = %q, want SUDO_USER's %q", got, root.HomeDir)
	}

	// Without sudo's variables (or with ones that do not parse), it is the
	// process's own user and $HOME.
	t.Setenv("SUDO_UID", "")
	t.Setenv("SUDO_GID", "x")
	t.Setenv("SUDO_USER", "")
	if got, want := invoker(), (supervisor.Owner{UID: os.Getuid(), GID: os.Getgid()}); got != want {
		t.Errorf("invoker() = %+v, want %+v", got, want)
	}
	if got := invokerHome(); got != "/not/the/home" {
		t.Errorf("invokerHome() = %q, want $HOME", got)
	}
}
