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
// The test works in the same steps a user does: it builds bin/stack's
// sources and mkrootfs once (TestMain), builds the trees, then runs every
// manifest through `stack config` and the ones that end by themselves (and
// the daemonized ones, up to down) through `stack up`, runs the demo's
// tour to its end and once interrupted, each with its own state directory
// and cgroup parent, and checks that nothing is left behind: no process,
// cgroup, mount or state.
//
// many/stack.yaml is generated: `go test ./examples -run TestManyManifest
// -update` rewrites it, and the test fails when it is out of date.
package examples
