// Package image keeps container images in a local, content-addressed
// store; it never starts anything, and never speaks to a registry.
//
// A pull goes in phases:
//
//  1. Parse: ParseSource reads what a manifest's image: says (a registry
//     reference with Docker's defaults, oci:, oci-archive:,
//     docker-archive:) without any I/O.
//  2. Resolve and fetch: package image/pull, a Puller, gets the image's
//     manifest from its registry, layout or archive, and hands its parts
//     to the store (put.go): the manifest and config into blobs/, each
//     checked against its digest; each layer not already unpacked,
//     unpacked under tmp/ with its whiteouts in overlayfs's form, then
//     renamed into layers/. A layer's flock makes two pulls of it, in one
//     process or two, fetch it once. `make build` runs image/pull in a
//     program of its own (cmd/stack-pull), whose registry client no other
//     command of stack pays for at its start.
//  3. Record: refs/ maps the reference to the image's config digest and
//     layers; Lookup reads it back and checks every part is there.
//
// The layers of an image are the lower directories of its containers'
// overlays, shared by all of them and never written. Unpacked rootfs
// archives live in the same store (Archive). Prune removes what no
// container holds in use (Use, ArchiveInUse: shared flocks a running
// supervisor keeps) and what no image left needs.
package image
