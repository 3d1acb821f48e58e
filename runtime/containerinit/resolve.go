package containerinit

import "github.com/stack-containers/stack/internal/linux"

// The lookups inside the rootfs are internal/linux's, which the image
// store's unpacker shares; these names keep the mount code short.

func openIn(root int, p string, flags int) (int, error) { return linux.OpenInRoot(root, p, flags) }

func mkdirIn(root int, p string, mode uint32) (int, error) { return linux.MkdirInRoot(root, p, mode) }

func fileIn(root int, p string) (int, error) { return linux.FileInRoot(root, p) }
