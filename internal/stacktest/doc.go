// Package stacktest drives the built stack binary end to end, as a user
// would, for tests only: nothing outside a _test.go file may import it.
//
// A test's life with it has three phases:
//
//  1. Build: Binary builds cmd/stack once per test binary, in a temporary
//     directory that Cleanup (called from TestMain after m.Run) removes.
//  2. Run: New gives the test an Env, a world of its own: a state directory
//     (STACK_STATE_DIR), a data directory (STACK_DATA_DIR, whose named
//     volumes may outlive down, as they do for users) and a working
//     directory from t.TempDir(), and a cgroup parent
//     (STACK_CGROUP_PARENT) named stack-test-<random hex>.
//     Run, RunIn and MustRun run stack to its end and return its output,
//     exit status and duration; Start leaves it running in the background,
//     with its process for signals (Ctrl-C is SIGINT). PS reads
//     `ps --format json` into PSRow, whose fields are spelled out from
//     SPEC.md rather than borrowed from the supervisor, so that a renamed
//     field breaks a test as it would break a user's script.
//  3. Check: when the test ends (t.Cleanup), the Env fails it for anything
//     of its own left behind, then removes it so that later tests start
//     clean: a process started with its state directory or sitting in its
//     cgroups; its cgroup parent or a cgroup under it, in every hierarchy
//     cgroup.Probe finds (stack removes the parent too once no stack uses
//     it); a mount that names one of its directories; an entry of its state
//     directory other than the archive cache every stack shares. A test may
//     check the same midway with AssertNothingLeft, and list the processes
//     in its cgroups (the containers') with CgroupProcesses.
//
// Every command runs with a generous timeout, so that a hang fails the test
// instead of the whole run; no test asserts on how long anything took.
// Envs of one test binary may run in parallel: what is an Env's is told by
// its own directories and cgroup parent, never by the binary alone.
package stacktest
