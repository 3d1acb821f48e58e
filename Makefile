# stack's build. Every target runs from a fresh clone. demo and test need a
# few system packages (hack/deps.sh lists them; test also qemu-system-x86
# and cpio, for its cgroup v2 VM): as root with apt-get they
# are installed when missing, with one line saying so; elsewhere the target
# stops with the command to run.

GO        ?= go
BIN       := bin/stack
INIT_BIN  := bin/stack-init
EXPORT_BIN := bin/stack-export
PULL_BIN  := bin/stack-pull
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
PKGS      := ./...
FUZZTIME  ?= 10m

.PHONY: all build deps test test-host test-v2 test-short lint fuzz clean apiserver

all: build

## build: the static stack binary in bin/stack, with the containers' init, the export and the pull programs embedded
# cmd/stack-init, the small program each container's init runs,
# cmd/stack-export, `stack export kubernetes` with the Kubernetes API
# types that no other command links, and cmd/stack-pull, an image's pull
# with the registry client (net/http, crypto/tls, go-containerregistry's
# remote, zstd) that no other command links, are built first and
# embedded into stack (-tags stackinit): -overlay maps the names the
# embeds ask for (cmd/stack/stack-init.elf, stack-export.elf,
# stack-pull.elf) onto bin/stack-init, bin/stack-export and
# bin/stack-pull, so no build product lands in the source tree. A plain
# `go build ./cmd/stack` works too: it re-executes the whole stack binary
# as the init instead, and links the export and the pull.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(INIT_BIN) ./cmd/stack-init
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(EXPORT_BIN) ./cmd/stack-export
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(PULL_BIN) ./cmd/stack-pull
	printf '{"Replace":{"%s/cmd/stack/stack-init.elf":"%s/$(INIT_BIN)","%s/cmd/stack/stack-export.elf":"%s/$(EXPORT_BIN)","%s/cmd/stack/stack-pull.elf":"%s/$(PULL_BIN)"}}\n' \
		'$(CURDIR)' '$(CURDIR)' '$(CURDIR)' '$(CURDIR)' '$(CURDIR)' '$(CURDIR)' > bin/embed-overlay.json
	CGO_ENABLED=0 $(GO) build -trimpath -tags stackinit -overlay bin/embed-overlay.json -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/stack

## deps: install the system packages demo and test need, if missing (see hack/deps.sh)
deps:
	@hack/deps.sh

## test: lint, every test on this machine, then every test again in a pure cgroup v2 VM
test: deps lint test-host test-v2

## test-host: every test on this machine; the container tests need root (deps installs busybox-static)
# One package at a time (-p 1): the tests of several packages compare the
# host's whole mount table and cgroup trees before and after, and another
# package's test mounting a tmpfs meanwhile would read as a leak.
#
# The `export kubernetes` tests need a real kube-apiserver: the apiserver
# target builds one and etcd (once, cached; 9 to 20 minutes cold), and
# WITH_APISERVER starts both on 127.0.0.1 for the length of the command,
# gives it their kubeconfig in STACK_TEST_KUBECONFIG and stops them after.
# `make test WITH_APISERVER=` runs without them (those tests then skip, or
# fail in CI).
test-host: deps apiserver
	$(WITH_APISERVER) env CGO_ENABLED=0 $(GO) test -p 1 -count=1 -timeout 40m $(PKGS)

WITH_APISERVER ?= hack/apiserver.sh run

## apiserver: build kube-apiserver and etcd for the export tests (cached)
apiserver:
	$(if $(WITH_APISERVER),hack/apiserver.sh build)

## test-v2: every test inside a throw-away QEMU VM whose kernel has cgroup v2 only (hack/v2vm.sh)
# It installs qemu-system-x86 and cpio where missing (hack/deps.sh v2vm),
# caches Debian's cloud kernel in ~/.cache/stack-v2vm, and keeps the guest's
# console and the verbose test output in bin/v2vm.
test-v2:
	hack/v2vm.sh

## test-short: lint, then the tests that need neither root nor busybox (seconds)
test-short: lint
	CGO_ENABLED=0 $(GO) test -short -count=1 $(PKGS)

## lint: gofmt and go vet, failing on any finding
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

## fuzz: fuzz the manifest loader, its interpolation, the init's configuration decoder and the log files' reader, FUZZTIME each (default 10m)
# go test fuzzes one target of one package at a time.
fuzz:
	$(GO) test ./manifest -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME)
	$(GO) test ./manifest -run '^$$' -fuzz '^FuzzExpand$$' -fuzztime $(FUZZTIME)
	$(GO) test ./runtime/containerinit -run '^$$' -fuzz '^FuzzDecodeConfig$$' -fuzztime $(FUZZTIME)
	$(GO) test ./supervisor/logs -run '^$$' -fuzz '^FuzzReadRecords$$' -fuzztime $(FUZZTIME)

clean:
	rm -rf bin

-include examples/examples.mk
-include bench/bench.mk
