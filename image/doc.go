// Package image gets container images and keeps them in a local,
// content-addressed store; it never starts anything.
//
// A pull goes in phases:
//
//  1. Parse: ParseSource reads what a manifest's image: says (a registry
//     reference with Docker's defaults, oci:, oci-archive:,
//     docker-archive:) without any I/O.
//  2. Resolve: the registry (go-containerregistry, with the Docker
//     config's credentials, plain HTTP only to localhost and 127.0.0.0/8)
//     or the layout or archive gives the image's manifest, an index
//     resolved to the host's platform.
//  3. Fetch: the manifest and config go into blobs/, each checked against
//     its digest; each layer not already unpacked is streamed, its blob
//     digest and diff ID checked on the way, into tmp/ and unpacked there
//     with its whiteouts in overlayfs's form, then renamed into layers/.
//     A layer's flock makes two pulls of it fetch it once.
//  4. Record: refs/ maps the reference to the image's config digest and
//     layers; Lookup reads it back and checks every part is there.
//
// The layers of an image are the lower directories of its containers'
// overlays, shared by all of them and never written. Unpacked rootfs
// archives live in the same store (Archive). Prune removes what no
// container holds in use (Use, ArchiveInUse: shared flocks a running
// supervisor keeps) and what no image left needs.
package image
