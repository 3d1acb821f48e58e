// Package examples holds stack's example stacks; the tests in package e2e
// keep them, and the documentation built on them, working.
//
// Layout:
//
//   - <example>/stack.yaml and <example>/README.md: one example each (seed,
//     web, crashloop, many);
//   - cmd/<prog>: the small static programs the examples run, cmd/registry
//     (the demo's registry on 127.0.0.1, serving an example tree as an image), and
//     cmd/mkrootfs, which compiles them and lays out each example's root
//     filesystem under build/<example> (see its doc comment for the phases);
//   - examples.mk: the make targets (rootfs, demo, example-<name>);
//   - demo.sh: the tour `make demo` runs.
//
// Their tests live in package e2e (examples_test.go), with stack's other
// end-to-end tests: every example manifest, and every manifest of the
// README, goes through `stack config` (and the README's reference must
// show every field of schema.json and document every command of `stack
// help`); the examples go through `stack up` (to their end, or from up -d
// to down); the demo's tour runs to its end and once interrupted.
//
// many/stack.yaml is generated: `go test ./e2e -run TestManyManifest
// -update` rewrites it, and the test fails when it is out of date.
package examples
