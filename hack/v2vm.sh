#!/usr/bin/env bash
# v2vm.sh: runs stack's whole test suite inside a throw-away QEMU VM whose
# kernel (Debian's linux-image-cloud-amd64) has cgroup v2 only, mounted at
# /sys/fs/cgroup with every controller it offers enabled at the root, as on a
# systemd host. The CI machines are hybrid (v1 controllers), so this is where
# the v2 driver meets real memory, pids and cpu controllers.
#
# Usage: hack/v2vm.sh [--run REGEX] [--skip REGEX] [--accel auto|kvm|tcg]
#                     [--mem SIZE] [--smp N] [--timeout SECS] [--shell CMD]
#
# --run and --skip go to every test binary's -test.run and -test.skip;
# --shell runs CMD (busybox sh, in /src, with the test binaries in place)
# instead of the tests, to look at the VM by hand.
#
# What it does, each step cached where it can be:
#  1. installs what it needs with apt-get where missing (hack/deps.sh v2vm,
#     which says so): qemu-system-x86, cpio, busybox-static;
#  2. downloads Debian's cloud kernel package with apt (cached in
#     $STACK_V2VM_CACHE, default ~/.cache/stack-v2vm, one directory per
#     kernel version) and keeps vmlinuz and the modules the tests need with
#     their dependencies: overlayfs, and bridge, veth, nftables, NAT and
#     conntrack for the network tests ($V2VM_MODULES adds more);
#  3. builds, on this host, the test binary of every package that has tests
#     and every main package of the module (the guest has no Go: a `go`
#     shim there hands out those binaries to tests that run `go build`); the
#     binaries are rebuilt only when a source file changed;
#  4. packs them with the source tree (for testdata and relative paths),
#     busybox, util-linux's unshare, nsenter and setpriv, and bash into an initramfs
#     ($V2VM_TOOLS adds more of this host's programs);
#  5. boots it (KVM only where the CPU has vmx/svm and a probe boot works,
#     TCG otherwise) and runs each package's test binary in its package's
#     directory, one package at a time, as root, with CI=true so that no
#     test may skip for want of something the VM should have. Three tests
#     are always skipped: cmd/stack's TestVersionFromLinker links with
#     -ldflags -X, which the go shim cannot, and e2e's TestKubernetesExamples
#     and TestKubernetesGolden need the kube-apiserver that make test-host
#     runs on this host.
#
# Root is needed only to install missing packages; the VM is the tests' root.
#
# The test output streams back over the guest's second serial port; the full
# verbose output is kept in bin/v2vm/tests.log and the guest's console (its
# kernel log) in bin/v2vm/console.log. Exit status: the tests' (0 when all
# passed), 124 when the VM timed out, 125 when it ended without a status.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
WORK=$SRC/bin/v2vm
CACHE=${STACK_V2VM_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/stack-v2vm}
V2VM_TOOLS=${V2VM_TOOLS:-}
ACCEL=auto MEM=3G SMP=2 TIMEOUT=3000 RUN= SKIP= SHELLCMD=
# Tests that cannot run in the VM, whatever its cgroups: TestVersionFromLinker
# links with -ldflags -X, which the guest's go shim cannot do (it hands out
# binaries built here), and the export tests that need a kube-apiserver
# (STACK_TEST_KUBECONFIG) have none there: it runs on this host only.
SKIP_ALWAYS='^(TestVersionFromLinker|TestKubernetesExamples|TestKubernetesGolden)$'
while [ $# -gt 0 ]; do
	case $1 in
	--run) RUN=$2; shift ;;
	--skip) SKIP=$2; shift ;;
	--accel) ACCEL=$2; shift ;;
	--mem) MEM=$2; shift ;;
	--smp) SMP=$2; shift ;;
	--timeout) TIMEOUT=$2; shift ;;
	--shell) SHELLCMD=$2; shift ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "v2vm.sh: error: unknown argument $1" >&2; echo "hint: hack/v2vm.sh --help" >&2; exit 2 ;;
	esac
	shift
done
case $ACCEL in auto | kvm | tcg) ;; *) echo "v2vm.sh: error: --accel must be auto, kvm or tcg" >&2; exit 2 ;; esac
log() { echo "v2vm: $*" >&2; }
now() { date +%s; }
T0=$(now)
mkdir -p "$WORK" "$CACHE"

# 1. Host packages.
"$SRC/hack/deps.sh" v2vm

# 2. The kernel and its modules, cached per version; flock, because several
# checkouts on one machine share the cache.
MODULES="overlay bridge br_netfilter veth dummy macvlan tun
	nfnetlink nf_tables nf_conntrack nf_nat nf_conntrack_netlink nf_conntrack_bridge
	nft_chain_nat nft_nat nft_masq nft_redir nft_ct nft_limit nft_hash nft_numgen
	nft_quota nft_objref nft_reject nft_reject_inet nft_reject_ipv4 nft_reject_ipv6
	nft_reject_bridge nft_fib nft_fib_inet nft_fib_ipv4 nft_fib_ipv6 nft_meta_bridge
	nft_socket ${V2VM_MODULES:-}"
kernel_pkg() { apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
PKG=$(kernel_pkg)
if [ -z "$PKG" ]; then
	apt-get update -qq >/dev/null
	PKG=$(kernel_pkg)
fi
[ -n "$PKG" ] || { echo "v2vm.sh: error: apt knows no linux-image-cloud-amd64" >&2; exit 1; }
KDIR=$CACHE/$PKG
# modinfo_field FILE KEY: the values of KEY in a module's .modinfo section
# (NUL-separated key=value strings), one a line.
modinfo_field() { tr '\0' '\n' < "$1" | sed -n "s/^$2=//p"; }
fetch_kernel() {
	local tmp=$CACHE/.$PKG.tmp
	rm -rf "$tmp"
	mkdir -p "$tmp/deb"
	log "downloading $PKG with apt"
	(cd "$tmp/deb" && apt-get download -qq "$PKG" 2>/dev/null)
	dpkg-deb -x "$tmp"/deb/*.deb "$tmp/x"
	local kv
	kv=$(ls "$tmp/x/lib/modules")
	local mods=$tmp/x/lib/modules/$kv
	mkdir -p "$tmp/k/lib/modules/$kv"
	cp "$tmp/x/boot/vmlinuz-$kv" "$tmp/k/vmlinuz"
	cp "$tmp/x/boot/config-$kv" "$tmp/k/config"
	cp "$mods/modules.builtin" "$tmp/k/lib/modules/$kv/"
	echo "$kv" > "$tmp/k/version"
	# Every wanted module with its dependencies, dependencies first (the
	# order insmod needs), with modules.dep and modules.alias for busybox
	# modprobe, which the kernel runs to load what a test asks for later.
	declare -A path=() seen=()
	local f m
	while read -r f; do
		m=$(basename "$f" .ko)
		path[${m//-/_}]=${f#"$mods/"}
	done < <(find "$mods/kernel" -name '*.ko')
	local order=() dep
	visit() {
		local m=${1//-/_} d
		[ -n "${seen[$m]:-}" ] && return
		seen[$m]=1
		if [ -z "${path[$m]:-}" ]; then
			grep -q "/$m.ko\$" "$mods/modules.builtin" || log "no module $m in $kv (and not built in)"
			return
		fi
		for d in $(modinfo_field "$mods/${path[$m]}" depends | tr ',' ' '); do visit "$d"; done
		order+=("$m")
	}
	for m in $MODULES; do visit "$m"; done
	: > "$tmp/k/lib/modules/$kv/modules.dep"
	: > "$tmp/k/lib/modules/$kv/modules.alias"
	for m in "${order[@]}"; do
		f=${path[$m]}
		mkdir -p "$tmp/k/lib/modules/$kv/$(dirname "$f")"
		cp "$mods/$f" "$tmp/k/lib/modules/$kv/$f"
		deps=
		for dep in $(modinfo_field "$mods/$f" depends | tr ',' ' '); do
			[ -n "${path[${dep//-/_}]:-}" ] && deps+=" ${path[${dep//-/_}]}"
		done
		echo "$f:$deps" >> "$tmp/k/lib/modules/$kv/modules.dep"
		modinfo_field "$mods/$f" alias | sed "s/^/alias /; s/\$/ $m/" >> "$tmp/k/lib/modules/$kv/modules.alias"
		echo "$f" >> "$tmp/k/load-order"
	done
	rm -rf "$KDIR"
	mv "$tmp/k" "$KDIR"
	rm -rf "$tmp"
}
exec 9> "$CACHE/.lock"
flock 9
# The module list is part of what is cached.
if [ ! -s "$KDIR/vmlinuz" ] || [ "$(cat "$KDIR/modules-wanted" 2>/dev/null)" != "$(echo $MODULES)" ]; then
	fetch_kernel
	echo $MODULES > "$KDIR/modules-wanted"
fi
flock -u 9
KV=$(cat "$KDIR/version")

# 3. The binaries, rebuilt when the sources (or the toolchain) changed.
cd "$SRC"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
mapfile -t FILES < <(git ls-files -co --exclude-standard | while read -r f; do [ -f "$f" ] && echo "$f"; done)
KEY=$( (go version; printf '%s\n' "${FILES[@]}" | tr '\n' '\0' | xargs -0 sha256sum) | sha256sum | cut -c1-16)
B=$WORK/build
if [ "$(cat "$B/key" 2>/dev/null)" != "$KEY" ]; then
	rm -rf "$B"
	mkdir -p "$B/tests" "$B/prebuilt"
	mod=$(go list -m)
	log "building the test binaries and programs of $mod"
	TB=$(now)
	for dir in $(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.Dir}}{{end}}' ./...); do
		rel=${dir#"$SRC"/}
		[ "$dir" = "$SRC" ] && rel=.
		mkdir -p "$B/tests/$rel"
		go test -c -o "$B/tests/$rel/$(basename "$dir").test" "./$rel"
	done
	for dir in $(go list -f '{{if eq .Name "main"}}{{.Dir}}{{end}}' ./...); do
		rel=${dir#"$SRC"/}
		[ "$dir" = "$SRC" ] && rel=.
		# In a directory of its own: a main package may sit below another
		# (bench/gofloor below bench).
		mkdir -p "$B/prebuilt/$rel"
		go build -trimpath -o "$B/prebuilt/$rel/main" "./$rel"
	done
	# stack itself as `make build` builds it, with cmd/stack-init embedded
	# as the containers' init, cmd/stack-export as the export and
	# cmd/stack-pull as the pull (see the Makefile).
	printf '{"Replace":{"%s/cmd/stack/stack-init.elf":"%s/prebuilt/cmd/stack-init/main","%s/cmd/stack/stack-export.elf":"%s/prebuilt/cmd/stack-export/main","%s/cmd/stack/stack-pull.elf":"%s/prebuilt/cmd/stack-pull/main"}}\n' \
		"$SRC" "$B" "$SRC" "$B" "$SRC" "$B" > "$B/embed-overlay.json"
	go build -trimpath -tags stackinit -overlay "$B/embed-overlay.json" -o "$B/prebuilt/cmd/stack/main" ./cmd/stack
	echo "$mod" > "$B/module"
	echo "$KEY" > "$B/key"
	log "built in $(($(now) - TB)) s"
fi

# 4. The initramfs.
R=$WORK/root
rm -rf "$R"
mkdir -p "$R"/{bin,sbin,etc,proc,sys,dev,tmp,run,root,newroot,src,lib,lib64,usr/bin,usr/sbin,usr/local/bin}
chmod 1777 "$R/tmp"
cp /bin/busybox "$R/bin/busybox"
cp -a "$KDIR/lib/modules" "$R/lib/"
cp "$KDIR/load-order" "$R/etc/v2vm-modules"
# The source tree, with each package's test binary in its directory: go test
# runs a test binary there, and tests read testdata and relative paths.
printf '%s\n' "${FILES[@]}" | cpio -pdm --quiet "$R/src"
cp -a "$B/tests/." "$R/src/"
cp -a "$B/prebuilt" "$R/prebuilt"
cp "$B/module" "$R/etc/v2vm-go-module"
cat > "$R/usr/bin/go" <<'EOF'
#!/bin/sh
# go shim: the guest has no Go toolchain. "go build [flags] -o OUT PKG..."
# copies what the host built for each main package PKG (an import path, or a
# directory relative to this one) to OUT, or into OUT when it is a directory
# (ends in /, or more than one PKG). -ldflags -X would need a real link.
[ "$1" = build ] || { echo "go shim: only go build is supported: $*" >&2; exit 2; }
shift
mod=$(cat /etc/v2vm-go-module) out= pkgs=
while [ $# -gt 0 ]; do
	case $1 in
	-o) out=$2; shift ;;
	-o=*) out=${1#-o=} ;;
	-ldflags=*-X*) echo "go shim: cannot link with $1" >&2; exit 2 ;;
	-ldflags | -tags | -gcflags | -asmflags | -mod | -p | -overlay) case $2 in *-X*) echo "go shim: cannot link with $1 $2" >&2; exit 2 ;; esac; shift ;;
	-*) ;;
	*) pkgs="$pkgs $1" ;;
	esac
	shift
done
[ -n "$out" ] && [ -n "$pkgs" ] || { echo "go shim: need -o and a package" >&2; exit 2; }
n=0
for p in $pkgs; do n=$((n + 1)); done
for p in $pkgs; do
	case $p in
	.* | /*) rel=$(cd "$p" && pwd) && rel=${rel#/src} && rel=${rel#/} ;;
	"$mod") rel= ;;
	"$mod"/*) rel=${p#"$mod"/} ;;
	*) echo "go shim: $p is not in $mod" >&2; exit 2 ;;
	esac
	bin=/prebuilt/$rel/main
	[ -f "$bin" ] || { echo "go shim: no main package $p (looked for $bin)" >&2; exit 2; }
	case $out in
	*/) mkdir -p "$out" && cp "$bin" "$out/${rel##*/}" ;;
	*) if [ "$n" -gt 1 ] || [ -d "$out" ]; then cp "$bin" "$out/${rel##*/}"; else cp "$bin" "$out"; fi ;;
	esac || exit
done
EOF
chmod 755 "$R/usr/bin/go"
# Host programs the tests run that busybox lacks or falls short on, with
# the libraries they link: util-linux's unshare, nsenter and setpriv
# (busybox's unshare fails --mount-proc, its setpriv has no
# --bounding-set), and bash for examples/demo.sh. They come first on PATH.
for tool in unshare nsenter setpriv bash $V2VM_TOOLS; do
	p=$(command -v "$tool") || { echo "v2vm.sh: error: no $tool on this host for the VM" >&2; exit 1; }
	cp "$p" "$R/usr/local/bin/$tool"
	for l in $(ldd "$p" 2>/dev/null | grep -o '/[^ ]*'); do
		mkdir -p "$R$(dirname "$l")"
		cp -L "$l" "$R$l"
	done
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$R/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$R/etc/group"
printf '127.0.0.1 localhost v2vm\n::1 localhost ip6-localhost\n' > "$R/etc/hosts"
echo v2vm > "$R/etc/hostname"
(cd "$B/tests" && find . -name '*.test' -type f | sed 's|^\./||' | sort) > "$R/etc/v2vm-tests"
# e2e's TestDebianRootfs keeps a debootstrap'ed tree in /var/tmp (make
# test-host builds it); the VM has no network to build one, so it gets this
# host's, or skips the test where there is none yet.
DEBIAN_TREE=/var/tmp/stack-test-debian/bookworm
if [ -x "$DEBIAN_TREE/usr/bin/apt-get" ]; then
	mkdir -p "$R$(dirname "$DEBIAN_TREE")"
	cp -a "$DEBIAN_TREE" "$R$DEBIAN_TREE"
else
	log "no $DEBIAN_TREE on this host (make test-host builds it): TestDebianRootfs is skipped"
	SKIP_ALWAYS="${SKIP_ALWAYS%)\$}|TestDebianRootfs)\$"
fi
printf '%s\n' "$SHELLCMD" > "$R/etc/v2vm-shell"
printf '%s' "$RUN" > "$R/etc/v2vm-run"
printf '%s' "$SKIP_ALWAYS${SKIP:+|$SKIP}" > "$R/etc/v2vm-skip"

# The initramfs's root is the kernel's rootfs, which pivot_root refuses (it
# has no parent mount), and stack pivots into every container: so /init
# bind-mounts it onto itself and moves that mount over /, which has a parent.
cat > "$R/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount --bind / /newroot
cd /newroot
/bin/busybox mount --move . /
exec /bin/busybox chroot . /init2
EOF
cat > "$R/init2" <<'EOF'
#!/bin/busybox sh
# PID 1 of a pure cgroup v2 machine.
/bin/busybox --install -s
export PATH=/usr/local/bin:/bin:/sbin:/usr/bin:/usr/sbin HOME=/root CI=true
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o ptmxmode=0666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
# The tests' files (rootfs copies, overlay layers) share this memory.
mount -o remount,size=90% / 2>/dev/null
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
hostname v2vm
ip link set lo up
O=/dev/ttyS1
stty -F $O raw -echo 2>/dev/null
say() { echo "@@V2VM $*" > $O; }
say "kernel $(uname -r) up $(cut -d' ' -f1 /proc/uptime)"
echo /sbin/modprobe > /proc/sys/kernel/modprobe
while read -r m; do
	insmod "/lib/modules/$(uname -r)/$m" > /dev/null 2>&1 || say "insmod $m failed: $(insmod "/lib/modules/$(uname -r)/$m" 2>&1)"
done < /etc/v2vm-modules
grep -q overlay /proc/filesystems || say "no overlayfs"
ctrls=$(cat /sys/fs/cgroup/cgroup.controllers)
echo "$ctrls" | sed 's/\([^ ]*\)/+\1/g' > /sys/fs/cgroup/cgroup.subtree_control
say "controllers $(cat /sys/fs/cgroup/cgroup.subtree_control) modules $(wc -l < /proc/modules) up $(cut -d' ' -f1 /proc/uptime)"
# The tests run in a cgroup of their own, so that PID 1 stays in the root.
mkdir /sys/fs/cgroup/tests
run=$(cat /etc/v2vm-run) skip=$(cat /etc/v2vm-skip) rc=0
sh -c 'echo $$ > /sys/fs/cgroup/tests/cgroup.procs
	if [ -n "$(cat /etc/v2vm-shell)" ]; then cd /src && exec sh /etc/v2vm-shell; fi
	rc=0
	for t in $(cat /etc/v2vm-tests); do
		case $t in */*) d=${t%/*} ;; *) d=. ;; esac
		echo "@@V2VM package $d up $(cut -d" " -f1 /proc/uptime)"
		(cd "/src/$d" && "./${t##*/}" -test.v -test.count=1 -test.timeout=30m ${1:+-test.run "$1"} ${2:+-test.skip "$2"} < /dev/null)
		r=$?
		echo "@@V2VM status $d $r up $(cut -d" " -f1 /proc/uptime)"
		[ $r = 0 ] || rc=1
	done
	exit $rc' tests "$run" "$skip" > $O 2>&1
rc=$?
left=$(find /sys/fs/cgroup -mindepth 1 -type d | grep -v '^/sys/fs/cgroup/tests$')
[ -z "$left" ] || say "cgroups left: $left"
say "peak $(cat /sys/fs/cgroup/tests/memory.peak 2>/dev/null) up $(cut -d' ' -f1 /proc/uptime)"
say "exit $rc"
sync
poweroff -f
EOF
chmod 755 "$R/init" "$R/init2"
# Uncompressed: an emulated CPU unpacks it much faster than it gunzips.
(cd "$R" && find . | cpio -o -H newc --quiet) > "$WORK/initramfs.cpio"
rm -rf "$R"

# 5. Boot.
kvm_works() {
	[ -w /dev/kvm ] && grep -qw -E 'vmx|svm' /proc/cpuinfo || return 1
	# /dev/kvm may be there and still fail on a real kernel (a nested
	# hypervisor's emulation gaps), so boot one to the shell first.
	local p=$WORK/probe
	rm -rf "$p"
	mkdir -p "$p/bin"
	cp /bin/busybox "$p/bin/"
	printf '#!/bin/busybox sh\necho @@V2VM kvm ok\n/bin/busybox poweroff -f\n' > "$p/init"
	chmod 755 "$p/init"
	(cd "$p" && find . | cpio -o -H newc --quiet) > "$WORK/probe.cpio"
	rm -rf "$p"
	timeout 60 qemu-system-x86_64 -enable-kvm -cpu host -m 256M -kernel "$KDIR/vmlinuz" -initrd "$WORK/probe.cpio" \
		-append "console=ttyS0 panic=-1 quiet" -display none -monitor none -no-reboot -nodefaults \
		-serial stdio < /dev/null 2>/dev/null | grep -q '@@V2VM kvm ok'
}
if [ "$ACCEL" = auto ]; then
	ACCEL=tcg
	kvm_works && ACCEL=kvm
fi
case $ACCEL in
kvm) accel=(-enable-kvm -cpu host) ;;
tcg) accel=(-accel tcg,thread=multi -cpu max) ;;
esac
OUT=$WORK/tests.log CONS=$WORK/console.log
log "booting $KV (accel $ACCEL, -m $MEM -smp $SMP); guest console in $CONS, test output in $OUT"
TB=$(now)
set +e
timeout "$TIMEOUT" qemu-system-x86_64 "${accel[@]}" -m "$MEM" -smp "$SMP" \
	-kernel "$KDIR/vmlinuz" -initrd "$WORK/initramfs.cpio" \
	-append "console=ttyS0 panic=-1 loglevel=4 cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1" \
	-display none -monitor none -no-reboot -nodefaults -nic none \
	-serial "file:$CONS" -serial stdio < /dev/null | tr -d '\r' | tee "$OUT" | grep -v -E '^(=== (RUN|PAUSE|CONT|NAME)|@@V2VM package )'
qrc=${PIPESTATUS[0]}
set -e
TE=$(now)
rc=$(sed -n 's/^@@V2VM exit //p' "$OUT" | head -1)
{
	echo "---- v2vm: $KV, accel $ACCEL, VM $((TE - TB)) s, total $((TE - T0)) s"
	sed -n 's/^@@V2VM \(controllers .*\)/\1/p; s/^@@V2VM \(insmod .*\)/\1/p; s/^@@V2VM \(cgroups left.*\)/\1/p' "$OUT"
	awk '/^@@V2VM status / { printf "%-28s %s\n", $3, ($4 == 0 ? "ok" : "FAIL (status " $4 ")") }' "$OUT"
	echo "skipped by name (-test.skip): $SKIP_ALWAYS${SKIP:+|$SKIP}"
	skips=$(grep -E '^ *--- SKIP' "$OUT" || true)
	if [ -n "$skips" ]; then echo "skipped in the VM:"; echo "$skips"; fi
	grep -E '^ *--- FAIL' "$OUT" || true
} >&2
if [ -z "$rc" ]; then
	log "the VM gave no exit status (qemu: $qrc); the end of its console:"
	tail -30 "$CONS" >&2
	[ "$qrc" = 124 ] && exit 124
	exit 125
fi
exit "$rc"
