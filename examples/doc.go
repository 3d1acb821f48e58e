// Package examples holds stack's example stacks and the test that keeps
// them, and the documentation built on them, working.
//
// Layout:
//
//   - <example>/stack.yaml and <example>/README.md: one example each (seed,
//     web, crashloop, many);
//   - cmd/<prog>: the small static programs the examples run, and
//     cmd/mkrootfs, which compiles them and lays out each example's root
//     filesystem under build/<example> (see its doc comment for the phases);
//   - examples.mk: the make targets (rootfs, demo, example-<name>);
//   - demo.sh: the tour `make demo` runs.
//
// The test works in the same steps a user does. TestMain builds stack's
// and mkrootfs's sources once, and the trees. Then every example manifest,
// and every manifest of the README, goes through `stack config` (and the
// README's reference must show every field of schema.json and document
// every command of `stack help`); the
// examples go through `stack up` (to their end, or from up -d to down);
// the demo's tour runs to its end and once interrupted. Each test has its
// own state directory and cgroup parent and checks that nothing is left
// behind: no process, cgroup, mount or state.
//
// many/stack.yaml is generated: `go test ./examples -run TestManyManifest
// -update` rewrites it, and the test fails when it is out of date.
package examples
