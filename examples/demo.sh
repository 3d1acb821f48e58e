#!/usr/bin/env bash
# The tour `make demo` runs, in under a minute: three containers started at
# once, their aggregated logs, ps, a container from an image that a registry
# on 127.0.0.1 serves, the seed's OOM kills and restarts, and down. It uses stack's defaults, as a user would (state in /run/stack,
# cgroups under "stack"), and downs every stack it started when it ends,
# fails or is interrupted, so that it leaves nothing behind.
#
#   examples/demo.sh [PATH-TO-STACK]
set -euo pipefail

cd "$(dirname "$0")/.."
stack=${1:-bin/stack}
web=examples/web/stack.yaml
seed=examples/seed/stack.yaml

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
  bold=$'\e[1m' reset=$'\e[0m'
else
  bold='' reset=''
fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$reset"; }
# show prints a command the way a user would type it, then runs it.
show() {
  printf '$ stack %s\n' "$*"
  "$stack" "$@"
}
# settle waits (up to 20 s) until the logs of manifest $1 hold a line of
# container $2 matching $3: the next step shows it, and on a loaded machine
# a fixed pause may end before the first one is written.
settle() {
  for _ in $(seq 100); do
    "$stack" -f "$1" logs "$2" 2>/dev/null | grep -q -- "$3" && return 0
    sleep 0.2
  done
}
die() {
  printf 'demo: error: %s\n' "$1" >&2
  [ -z "${2:-}" ] || printf 'hint: %s\n' "$2" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || die "the demo needs root: it creates namespaces, cgroups and mounts" "sudo make demo"
[ -x "$stack" ] || die "no stack binary at $stack" "make build"
[ -d examples/build/web ] || die "no root filesystems in examples/build" "make rootfs"

# The stacks this tour started, and only those, are downed on the way out:
# a stack of the same name that a user already runs is left alone.
started=()
registry_pid='' scratch=''
cleanup() {
  local status=$? m
  trap - EXIT INT TERM
  for m in "${started[@]}"; do
    "$stack" down "$m" >/dev/null || printf 'demo: error: could not down %s; run: %s down %s\n' "$m" "$stack" "$m" >&2
  done
  if [ -n "$registry_pid" ]; then
    kill "$registry_pid" 2>/dev/null || true
    wait "$registry_pid" 2>/dev/null || true
  fi
  [ -z "$scratch" ] || rm -rf "$scratch"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for name in web seed; do
  listed=$("$stack" -p "$name" ps --format json) || die "$stack ps failed"
  if [ "$listed" != "[]" ]; then
    die "a stack named $name is already running" "stop it first: $stack -p $name down"
  fi
done

step "Start three containers at once, in the background: a web server, a client in the server's net namespace, a worker"
started+=("$web")
show up -d "$web"
settle "$web" worker "round "
settle "$web" client "hello #"

step "Their aggregated logs: each line is NAME | LINE, stack's own events NAME * EVENT"
show -f "$web" logs -n 4

step "What is running, with each container's memory against its limit"
show -f "$web" ps

if [ -x examples/build/registry ]; then
  step "An image instead of a rootfs: a registry on 127.0.0.1 serves the worker as an image (nothing comes from the internet)"
  scratch=$(mktemp -d)
  examples/build/registry -tree examples/build/web >"$scratch/ref" 2>"$scratch/registry.log" &
  registry_pid=$!
  for _ in $(seq 100); do
    [ ! -s "$scratch/ref" ] || break
    kill -0 "$registry_pid" 2>/dev/null || die "the registry did not start: $(cat "$scratch/registry.log")"
    sleep 0.1
  done
  ref=$(head -n 1 "$scratch/ref")
  [ -n "$ref" ] || die "the registry did not say what it serves"
  image=$scratch/stack.yaml
  cat >"$image" <<EOF
name: image-demo
containers:
  worker:
    image: $ref
    command: ["-every", "1s", "-kib", "64"]   # replaces the image's Cmd; its entrypoint stays
EOF
  cat "$image"
  show -f "$image" pull
  started+=("$image")
  show up -d "$image"
  settle "$image" worker "round "
  show -f "$image" logs -n 2 worker
  show images
  show down "$image"
  started=("$web")
fi

if [ ! -d examples/build/seed ]; then
  step "Skipping the OOM kill: the seed example needs a static busybox"
  die "demo incomplete: no static busybox" "apt-get install -y busybox-static, then make demo"
fi

step "The seed experiment in the foreground: mem.sh under a 2 MB limit is OOM-killed and restarted 3 times; calm stays under it"
started+=("$seed")
# up exits 1 here, and says why: mem's last run was OOM-killed.
show up "$seed" || true

step "After the end: ps still shows the exit codes, restarts and OOM kills, until down"
show -f "$seed" ps

step "Stop and remove everything"
show down "$seed"
show down "$web"
started=()
show -p web ps

# Check what the last line claims: no cgroup, mount or state of either stack.
state=${STACK_STATE_DIR:-/run/stack} parent=${STACK_CGROUP_PARENT:-stack}
for name in web seed; do
  for dir in /sys/fs/cgroup/*/"$parent/$name" /sys/fs/cgroup/"$parent/$name" "$state/$name"; do
    [ ! -e "$dir" ] || die "left behind: $dir"
  done
  [ "$("$stack" -p "$name" ps --format json)" = "[]" ] || die "stack $name still listed by ps"
done
! grep -q " $state/" /proc/self/mountinfo || die "mounts left under $state"
printf '\n%sDone.%s Nothing is left: no process, cgroup, mount or state of the demo.\n' "$bold" "$reset"
