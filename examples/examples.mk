# The examples' targets, included by the top-level Makefile. Only demo
# installs anything (deps: busybox-static when missing, as root with
# apt-get); without a static busybox, mkrootfs skips the shell example's
# tree and says how to get busybox; the Go-only examples still build and run.

EXAMPLES       := seed web crashloop many
EXAMPLES_BUILD := examples/build
MKROOTFS       := GO=$(GO) $(GO) run ./examples/cmd/mkrootfs -src examples -o $(EXAMPLES_BUILD)

.PHONY: rootfs registry demo clean-examples $(addprefix example-,$(EXAMPLES))

## rootfs: every example's root filesystem, reproducibly, in examples/build
rootfs:
	$(MKROOTFS)

## registry: the demo's registry on 127.0.0.1, which serves an example tree as an image
registry:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(EXAMPLES_BUILD)/registry ./examples/cmd/registry

## demo: build stack, the root filesystems and the registry, then a tour of about a minute (as root)
demo: deps build rootfs registry
	examples/demo.sh $(BIN)

## example-NAME: run one example in the foreground until it ends or Ctrl-C (as root)
# up's exit status is kept (the seed's is 1: its last run was OOM-killed);
# the stack's ps and logs stay until down, hence the reminder.
$(addprefix example-,$(EXAMPLES)): example-%: build
	$(MKROOTFS) $*
	@echo '$(BIN) up examples/$*/stack.yaml'; \
	$(BIN) up examples/$*/stack.yaml; status=$$?; \
	echo "stack up exited with status $$status; ps and logs work until: $(BIN) down examples/$*/stack.yaml"; \
	exit $$status

clean: clean-examples
clean-examples:
	rm -rf $(EXAMPLES_BUILD)
