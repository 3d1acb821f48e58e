# Benchmarks: stack against the floor and its peers (issue 7). The harness
# lives in bench/ (see bench/doc.go); every peer is optional and reported as
# skipped when missing.

BENCH_FLAGS ?=
BENCH_OUT   ?= docs/benchmarks.md

.PHONY: bench bench-quick bench-peers

## bench: the full run (root); writes the table to $(BENCH_OUT)
bench: build
	CGO_ENABLED=0 $(GO) run ./bench -stack $(BIN) -out $(BENCH_OUT) $(BENCH_FLAGS)

## bench-quick: fewer runs, under two minutes; prints only
bench-quick: build
	CGO_ENABLED=0 $(GO) run ./bench -quick -stack $(BIN) $(BENCH_FLAGS)

## bench-peers: install the peers from Debian's packages (root, network)
bench-peers:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		crun runc docker.io docker-compose podman podman-compose busybox-static
