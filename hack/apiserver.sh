#!/usr/bin/env bash
# hack/apiserver.sh: a real kube-apiserver and etcd on 127.0.0.1 for the
# `stack export kubernetes` tests. Both are built from the Go module proxy
# (there is no other way to get them here): a throwaway module requires
# k8s.io/kubernetes at a tag with every staging module (required there as
# v0.0.0 + replace ./staging/...) replaced by its published v0.x release.
#
#   hack/apiserver.sh build          build both binaries once into $APISERVER_BIN
#   hack/apiserver.sh start          build if needed, start both, wait for /readyz,
#                                    print the kubeconfig path (last line of stdout)
#   hack/apiserver.sh stop           stop what start started (by the pids it recorded)
#   hack/apiserver.sh status         pids and /readyz
#   hack/apiserver.sh run CMD ARG..  start, run CMD with STACK_TEST_KUBECONFIG set to
#                                    the kubeconfig, stop, exit with CMD's status
#
# Nothing listens on anything but 127.0.0.1. Ports are picked free unless set.
# Environment (all optional):
#   APISERVER_BIN   where the binaries go (default ${XDG_CACHE_HOME:-$HOME/.cache}/stack-apiserver/bin:
#                   kept across clones, so only the first build is cold: 9 to 20 minutes on 2 cores)
#   APISERVER_RUN   pki, kubeconfig, etcd data, logs, pids (default: a fresh temporary directory
#                   for start/run; stop and status need it set to what start printed)
#   K8S_VERSION     k8s.io/kubernetes tag (default v1.37.2)
#   ETCD_VERSION    go.etcd.io/etcd/server/v3 (default: the version k8s.io/kubernetes requires)
#   APISERVER_PORT, ETCD_PORT, ETCD_PEER_PORT
# Needs go, openssl, curl, ss.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
BIN=${APISERVER_BIN:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/stack-apiserver/bin}
BUILD=$(dirname "$BIN")/build

say() { echo "apiserver.sh: $*" >&2; }
die() { say "$*"; exit 1; }
clock() { date +%s; }

# kube_gomod prints the path of k8s.io/kubernetes's go.mod in the module cache.
kube_gomod() {
  go mod download "k8s.io/kubernetes@$K8S_VERSION" >&2
  echo "$(go env GOMODCACHE)/k8s.io/kubernetes@$K8S_VERSION/go.mod"
}

build_apiserver() {
  local gomod=$1 dir=$BUILD/kube-apiserver
  local gover staging minor
  gover=$(awk '$1 == "go" { print $2; exit }' "$gomod")
  staging=$(awk '/^require \(/ { in_req = 1; next } in_req && /^\)/ { in_req = 0 }
                 in_req && $1 ~ /^k8s\.io\// && $2 == "v0.0.0" { print $1 }' "$gomod")
  minor=${K8S_VERSION#v1.}
  rm -rf "$dir" && mkdir -p "$dir"
  {
    echo "module stackkubeapiserver"
    echo
    echo "go $gover"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    for m in $staging; do echo "	$m => $m v0.$minor"; done
    echo ")"
  } >"$dir/go.mod"
  (cd "$dir" && go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION")
  # The version the server reports (/version) comes from these variables; the
  # default "v0.0.0-master" makes client-side version checks misbehave.
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor%%.*}"
  (cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$BIN/kube-apiserver.new" k8s.io/kubernetes/cmd/kube-apiserver)
  mv "$BIN/kube-apiserver.new" "$BIN/kube-apiserver"
}

build_etcd() {
  local gomod=$1 dir=$BUILD/etcd
  local gover version
  gover=$(awk '$1 == "go" { print $2; exit }' "$gomod")
  version=${ETCD_VERSION:-$(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2; exit }' "$gomod")}
  [[ -n $version ]] || die "no go.etcd.io/etcd/server/v3 in $gomod; set ETCD_VERSION"
  # The server module's own go.mod replaces its siblings by relative paths,
  # so `go install module@version` refuses it: build from a module of ours.
  rm -rf "$dir" && mkdir -p "$dir"
  printf 'module stacketcd\n\ngo %s\n' "$gover" >"$dir/go.mod"
  (cd "$dir" && go get -tool "go.etcd.io/etcd/server/v3@$version")
  (cd "$dir" && go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.new" go.etcd.io/etcd/server/v3)
  mv "$BIN/etcd.new" "$BIN/etcd"
}

build() {
  if [[ -x $BIN/kube-apiserver && -x $BIN/etcd ]]; then
    say "kube-apiserver and etcd are in $BIN (remove them to rebuild)"
    return 0
  fi
  mkdir -p "$BIN"
  export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=mod"
  local t0 gomod
  t0=$(clock)
  gomod=$(kube_gomod)
  [[ -x $BIN/kube-apiserver ]] || { build_apiserver "$gomod"; say "kube-apiserver $K8S_VERSION built in $(($(clock) - t0))s"; }
  [[ -x $BIN/etcd ]] || { build_etcd "$gomod"; say "etcd built in $(($(clock) - t0))s"; }
}

port_free() { ! ss -Hltn "sport = :$1" | grep -q .; }

# free_port prints a port on 127.0.0.1 that nothing listens on, so that
# several checkouts can run their tests at once.
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 20000))
    if port_free "$p"; then echo "$p"; return 0; fi
  done
  die "no free port found on 127.0.0.1"
}

alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# pki makes a CA, the server's certificate, the service-account key pair and
# a bearer token for one admin user, and the kubeconfig that uses them.
pki() {
  local d=$RUN/pki port=$1 token
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=stack-test-ca" \
    -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
    -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$d/server.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -days 30 -extfile "$d/server.ext" -out "$d/server.crt" 2>/dev/null
  openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
  openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
  token=$(openssl rand -hex 24)
  echo "$token,admin,admin,system:masters" >"$d/tokens.csv"
  chmod 600 "$d"/*.key "$d/tokens.csv"
  cat >"$RUN/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: stack-test
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority: $d/ca.crt
users:
- name: admin
  user:
    token: $token
contexts:
- name: stack-test
  context: {cluster: stack-test, user: admin, namespace: default}
current-context: stack-test
EOF
  chmod 600 "$RUN/kubeconfig"
}

start() {
  build
  RUN=${APISERVER_RUN:-$(mktemp -d "${TMPDIR:-/tmp}/stack-apiserver.XXXXXX")}
  mkdir -p "$RUN"
  if alive "$RUN/kube-apiserver.pid"; then
    say "already running in $RUN"
    echo "$RUN/kubeconfig"
    return 0
  fi
  local api_port=${APISERVER_PORT:-$(free_port)}
  local etcd_port=${ETCD_PORT:-$(free_port)}
  local peer_port=${ETCD_PEER_PORT:-$(free_port)}
  for p in "$api_port" "$etcd_port" "$peer_port"; do
    port_free "$p" || die "port $p on 127.0.0.1 is in use (APISERVER_PORT, ETCD_PORT, ETCD_PEER_PORT)"
  done
  pki "$api_port"
  local t0
  t0=$(clock)
  # --unsafe-no-fsync: the data is thrown away with the run directory; fsync
  # on a shared disk would only slow the tests.
  "$BIN/etcd" --name stack-test --data-dir "$RUN/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "stack-test=http://127.0.0.1:$peer_port" \
    --listen-metrics-urls "" --unsafe-no-fsync --log-level warn >"$RUN/etcd.log" 2>&1 &
  echo $! >"$RUN/etcd.pid"
  for _ in $(seq 1 150); do
    curl -fsS "http://127.0.0.1:$etcd_port/health" >/dev/null 2>&1 && break
    alive "$RUN/etcd.pid" || { tail -20 "$RUN/etcd.log" >&2; die "etcd exited"; }
    sleep 0.2
  done
  local d=$RUN/pki
  # The Service IP range is only stored (Services get ClusterIPs from it);
  # nothing is sent there. The endpoint reconciler refuses a loopback
  # advertise address, and there is no node to reconcile anyway: none.
  "$BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --tls-cert-file "$d/server.crt" --tls-private-key-file "$d/server.key" \
    --token-auth-file "$d/tokens.csv" --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$d/sa.pub" --service-account-signing-key-file "$d/sa.key" \
    --service-cluster-ip-range 10.0.0.0/24 \
    --disable-admission-plugins ServiceAccount \
    --endpoint-reconciler-type none --profiling=false >"$RUN/kube-apiserver.log" 2>&1 &
  echo $! >"$RUN/kube-apiserver.pid"
  local token
  token=$(cut -d, -f1 "$d/tokens.csv")
  for _ in $(seq 1 600); do
    if [[ $(curl -sS --cacert "$d/ca.crt" -H "Authorization: Bearer $token" \
      "https://127.0.0.1:$api_port/readyz" 2>/dev/null) == ok ]]; then
      say "kube-apiserver ready on 127.0.0.1:$api_port after $(($(clock) - t0))s; run directory $RUN"
      echo "$RUN/kubeconfig"
      return 0
    fi
    alive "$RUN/kube-apiserver.pid" || break
    sleep 0.2
  done
  tail -30 "$RUN/kube-apiserver.log" >&2
  stop
  die "kube-apiserver did not become ready"
}

stop_one() {
  local f=$RUN/$1.pid pid
  [[ -f $f ]] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    say "stopped $1 (pid $pid)"
  fi
  rm -f "$f"
}

need_run() {
  RUN=${APISERVER_RUN:-}
  [[ -n $RUN ]] || die "set APISERVER_RUN to the run directory that start printed"
}

stop() { stop_one kube-apiserver; stop_one etcd; }

status() {
  for n in etcd kube-apiserver; do
    if alive "$RUN/$n.pid"; then echo "$n: running (pid $(cat "$RUN/$n.pid"))"; else echo "$n: stopped"; fi
  done
  if [[ -f $RUN/kubeconfig ]]; then echo "kubeconfig: $RUN/kubeconfig"; fi
}

# run owns the servers for the length of one command: they stop when it
# ends, however it ends, and the run directory goes with them unless it was
# given.
run() {
  [[ $# -gt 0 ]] || die "usage: $0 run CMD [ARG...]"
  local kubeconfig own_run=
  [[ -n ${APISERVER_RUN:-} ]] || own_run=1
  kubeconfig=$(start | tail -1)
  RUN=$(dirname "$kubeconfig")
  trap 'stop; if [[ -n $own_run ]]; then rm -rf "$RUN"; fi' EXIT
  local rc=0
  STACK_TEST_KUBECONFIG=$kubeconfig "$@" || rc=$?
  exit "$rc"
}

case ${1:-} in
build) build ;;
start) start ;;
stop) need_run; stop ;;
status) need_run; status ;;
run) shift; run "$@" ;;
*) echo "usage: $0 build|start|stop|status|run CMD [ARG...]" >&2; exit 2 ;;
esac
