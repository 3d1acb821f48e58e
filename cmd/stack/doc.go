// Command stack runs a stack of containers described by a manifest,
// stack.yaml, straight on Linux namespaces and cgroups.
//
// The command line is `stack [-f FILE] [-p NAME] COMMAND [ARGS]`. main.go
// holds what every verb shares:
//
//   - The command table: each verb is a function returning its *command
//     (name, synopsis, one-line summary, help text, and a setup that
//     declares its flags and returns the function that runs it), in a file
//     of its own (config.go, version.go, ...), listed once in commands().
//     A command's flags may come before, between or after its positional
//     arguments, so `stack up stack.yaml -d` works.
//   - Finding the manifest: -f, else the command's one positional argument,
//     else ./stack.yaml, then ./stack.yml; naming it twice is an error.
//   - Errors: printed on stderr as "stack: error: ...", with a "hint: ..."
//     line where one helps (a permission error of a non-root user gets
//     the hint that stack needs root, whichever verb met it); an invalid
//     manifest prints every problem as file:line:col: field: problem.
//     Exit status 2 is for usage errors and manifests that cannot be
//     loaded (nothing was started), 1 for every other failure.
//
// The very first statement of main is reserved for the runtime's init
// hook: the same binary, re-executed by the supervisor, becomes a
// container's init there.
package main
