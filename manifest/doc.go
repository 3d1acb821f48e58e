// Package manifest turns a stack.yaml into a validated, normalized Stack.
//
// Load works in five phases, each collecting problems rather than stopping
// at the first, so that one run reports everything wrong with a manifest,
// sorted by position:
//
//  1. Parse: the YAML becomes a node tree (go.yaml.in/yaml/v3), which keeps
//     the line and column of every value. A file holds one document.
//  2. Interpolate: ${VAR} and its Compose forms are replaced in every
//     string value of the tree (interpolate.go), from the environment the
//     caller passes in (Options; the package reads no global), then from
//     the .env file beside the manifest (dotenv.go). It works on the nodes,
//     so a value's later problems still point at its line, and a variable
//     without a value is a warning located the same way.
//  3. Decode: each field is read from its node into the typed Stack, with
//     its local checks: unknown fields (with a "did you mean"), types,
//     names, sizes, durations, signals, uid:gid, hostnames, env names, the
//     shell-like splitting of a command string. Aliases and merge keys
//     ("<<") are followed, within a node budget.
//  4. Bind: host paths (rootfs, mount sources) are resolved against the
//     manifest's directory and must exist; this is the package's only I/O
//     besides reading the manifest and its .env.
//  5. Link: the checks that span containers (join and depends_on targets,
//     namespaces both joined and created, one cycle report per cycle
//     through depends_on and join, written from its smallest name), then
//     the defaults that depend on them: joined namespaces leave the default
//     set, and the hostname defaults to the container's name only when the
//     container has a uts namespace of its own.
//
// Every other default (workdir "/", user 0:0, SIGTERM, 10s, restart "no"
// with a 100ms backoff capped at 10s) is set before decoding, so a field
// left out and a field written with its default value load the same.
//
// A Stack prints as YAML (Stack.MarshalYAML) in a form Load reads back into
// the same Stack; `stack config` relies on it. schema.json at the root of
// the repository describes the same format for editors; the tests keep the
// two in agreement.
package manifest
