// Package kube turns a validated stack into Kubernetes objects that an API
// server accepts as they are, with strict field validation, and says what
// it could not carry over.
//
// Convert works in three phases:
//
//  1. Group: containers that join another's namespaces go into that
//     container's Pod (a Pod shares net, ipc and uts among its
//     containers); a group is named after the container that joins
//     nothing.
//  2. Map: each group becomes a workload chosen by its restart policy
//     (always: a Deployment of one replica; no: a bare Pod; on-failure and
//     on-oom: a Job), each container a Kubernetes container, and each
//     container's name a headless Service that resolves to its Pod, as the
//     name resolved on the stack's network. Every manifest field has one
//     small function that maps it (container.go, pod.go); a field with no
//     Kubernetes twin adds a Note instead, which the caller prints as a
//     warning and the output carries as a comment.
//  3. Check: names and values that Kubernetes would refuse or change are
//     mapped (a '_' in a name becomes '-') or refused here, as Problems
//     located in the manifest, rather than left for the cluster.
//
// The package knows nothing of how containers run; a rootfs container
// needs an image reference from the caller (Options.Images), who packs and
// pushes it. Write prints the objects as YAML documents with comment
// headers (sigs.k8s.io/yaml, the API's own JSON field names).
package kube
