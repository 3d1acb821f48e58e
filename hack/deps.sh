#!/bin/sh
# hack/deps.sh [v2vm]: the system packages that `make demo` and `make test`
# need; with v2vm also those of the pure cgroup v2 VM (hack/v2vm.sh), which
# `make test` runs too. A missing one is installed with apt-get when this
# runs as root on a machine that has it, with one line saying so; elsewhere
# it stops (exit 2) with the exact command to run. A target that needs
# another package adds one `need` line below: the package, then a command
# that succeeds when it is there.
set -eu

missing=""
need() {
  pkg=$1
  shift
  if ! "$@" >/dev/null 2>&1; then
    missing="$missing $pkg"
  fi
}

# A static busybox where internal/busybox looks for it: a dynamic one would
# not run inside a rootfs without its libraries.
static_busybox() {
  for p in /bin/busybox /usr/bin/busybox /usr/lib/busybox/busybox-static; do
    if [ -f "$p" ] && ! head -c 65536 "$p" | grep -qa -e /lib64/ld-linux -e /lib/ld-; then
      return 0
    fi
  done
  return 1
}

need busybox-static static_busybox
# hack/apiserver.sh: certificates, the readiness probe, free ports.
need openssl command -v openssl
need curl command -v curl
need iproute2 command -v ss
# The Debian rootfs test (e2e) builds its tree with debootstrap, once per
# machine.
need debootstrap command -v debootstrap
if [ "${1:-}" = v2vm ]; then
  need qemu-system-x86 command -v qemu-system-x86_64
  need cpio command -v cpio
fi

[ -n "$missing" ] || exit 0
install="apt-get install -y$missing"
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo "
  echo "deps: missing$missing; install with: $sudo$install" >&2
  command -v apt-get >/dev/null 2>&1 || echo "deps: (no apt-get here: install the same with this system's package manager)" >&2
  exit 2
fi
echo "deps: installing$missing ($install)"
export DEBIAN_FRONTEND=noninteractive
# The package lists are refreshed only when they do not know the package:
# on most machines they do, and the install takes seconds.
if ! apt-get install -y -qq$missing >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
  apt-get install -y -qq$missing >/dev/null || {
    echo "deps: $install failed (see above)" >&2
    exit 1
  }
fi
