package main

import (
	"os"
	"os/user"
	"strconv"

	"github.com/stack-containers/stack/supervisor"
)

// Who ran stack: through sudo, the user behind it (SUDO_UID, SUDO_GID,
// SUDO_USER, which sudo sets), else the process's own user. A bind mount's
// missing host path is made theirs, and "~" is their home, as it would be
// for the same manifest run without sudo.

// invoker is the user and group that own what stack creates for the user.
func invoker() supervisor.Owner {
	owner := supervisor.Owner{UID: os.Getuid(), GID: os.Getgid()}
	if os.Geteuid() != 0 {
		return owner
	}
	uid, uerr := strconv.Atoi(os.Getenv("SUDO_UID"))
	gid, gerr := strconv.Atoi(os.Getenv("SUDO_GID"))
	if uerr == nil && gerr == nil && uid >= 0 && gid >= 0 {
		owner = supervisor.Owner{UID: uid, GID: gid}
	}
	return owner
}

// invokerHome is the home directory "~" stands for; "" when unknown.
func invokerHome() string {
	if name := os.Getenv("SUDO_USER"); name != "" && os.Geteuid() == 0 {
		if u, err := user.Lookup(name); err == nil && u.HomeDir != "" {
			return u.HomeDir
		}
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return home
}
