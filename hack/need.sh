#!/usr/bin/env bash
# need.sh PACKAGE:FILE...: installs, with apt-get, each Debian package whose
# FILE (a command on PATH, or an absolute path) is missing, and says so on
# stderr. It never installs anything that is already there, and outside root
# it stops with the command to run instead.
#
#   hack/need.sh busybox-static:/bin/busybox qemu-system-x86:qemu-system-x86_64
set -euo pipefail

missing=()
for want in "$@"; do
	pkg=${want%%:*} file=${want#*:}
	case $file in
	/*) [ -x "$file" ] && continue ;;
	*) command -v "$file" >/dev/null && continue ;;
	esac
	missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "need.sh: error: missing Debian packages: ${missing[*]}" >&2
	echo "hint: as root, apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "need.sh: installing with apt-get: ${missing[*]}" >&2
# The package lists of a fresh machine may be empty or stale.
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
