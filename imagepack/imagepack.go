// Package imagepack packs a container's root filesystem, a directory or a
// tar archive, into a one-layer OCI image and pushes it to a registry, so
// that a cluster can pull what stack ran from a rootfs.
//
// The layer is the tree as it is: owners, modes, times and devices come
// from the files (a tree built reproducibly packs into the same digest
// every time); an archive is taken as the layer itself. The image config
// names only the platform: the command, environment and user are the
// Pod's, written by the exporter.
package imagepack

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/stack-containers/stack/image"
)

// Image packs rootfs (a directory, or a .tar, .tar.gz or .tgz archive)
// into an image for this machine's platform.
func Image(rootfs string) (v1.Image, error) {
	fi, err := os.Stat(rootfs)
	if err != nil {
		return nil, fmt.Errorf("pack rootfs %s: %w", rootfs, err)
	}
	var layer v1.Layer
	if fi.IsDir() {
		layer, err = tarball.LayerFromOpener(func() (io.ReadCloser, error) { return tarDir(rootfs), nil },
			tarball.WithMediaType(types.OCILayer))
	} else {
		// LayerFromFile compresses a plain tar and takes a gzipped one
		// as it is.
		layer, err = tarball.LayerFromFile(rootfs, tarball.WithMediaType(types.OCILayer))
	}
	if err != nil {
		return nil, fmt.Errorf("pack rootfs %s: %w", rootfs, err)
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	base, err = mutate.ConfigFile(base, &v1.ConfigFile{
		Architecture: goruntime.GOARCH,
		OS:           "linux",
		RootFS:       v1.RootFS{Type: "layers"},
		Config:       v1.Config{WorkingDir: "/"},
	})
	if err != nil {
		return nil, fmt.Errorf("pack rootfs %s: %w", rootfs, err)
	}
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, fmt.Errorf("pack rootfs %s: %w", rootfs, err)
	}
	return img, nil
}

// tarDir streams the tree under root as a tar archive, in lexical order.
// Sockets are left out: they mean nothing outside the host they were
// bound on.
func tarDir(root string) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil || rel == "." {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if fi.Mode()&fs.ModeSocket != 0 {
				return nil
			}
			link := ""
			if fi.Mode()&fs.ModeSymlink != 0 {
				if link, err = os.Readlink(p); err != nil {
					return err
				}
			}
			hdr, err := tar.FileInfoHeader(fi, link)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			hdr.Name = filepath.ToSlash(rel)
			if fi.IsDir() {
				hdr.Name += "/"
			}
			// Names of this machine's users mean nothing in the image.
			hdr.Uname, hdr.Gname = "", ""
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if !fi.Mode().IsRegular() {
				return nil
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		})
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr
}

// Repository is where a stack's rootfs is pushed: under registry (a
// repository prefix such as "registry.example/team"), the stack's name,
// then the rootfs's base name without its archive extension.
func Repository(registry, stack, rootfs string) (name.Repository, error) {
	base := filepath.Base(rootfs)
	for _, ext := range image.ArchiveSuffixes {
		if b, ok := strings.CutSuffix(base, ext); ok {
			base = b
			break
		}
	}
	repo, err := name.NewRepository(strings.TrimSuffix(registry, "/")+"/"+component(stack)+"/"+component(base), name.StrictValidation)
	if err != nil {
		return name.Repository{}, fmt.Errorf("image repository for %s: %w", rootfs, err)
	}
	return repo, nil
}

// component makes s a repository path component: lower-case letters,
// digits and single separators, as the distribution spec allows.
func component(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else if b.Len() > 0 && !strings.HasSuffix(b.String(), "-") {
			b.WriteByte('-')
		}
	}
	out := strings.TrimRight(b.String(), "-")
	if out == "" {
		return "rootfs"
	}
	return out
}

// Push pushes img to repo with the tag "latest" and returns the
// reference by digest, which is what a Pod should name: a tag can move.
// Credentials come from the Docker config, as for pulls.
func Push(ctx context.Context, img v1.Image, repo name.Repository) (name.Digest, error) {
	tag := repo.Tag("latest")
	err := remote.Write(tag, img,
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithTransport(httpOnLoopback{remote.DefaultTransport}))
	if err != nil {
		return name.Digest{}, fmt.Errorf("push %s: %w", tag, err)
	}
	d, err := img.Digest()
	if err != nil {
		return name.Digest{}, fmt.Errorf("push %s: %w", tag, err)
	}
	return repo.Digest(d.String()), nil
}

// httpOnLoopback refuses plain HTTP to anything but a loopback address:
// go-containerregistry falls back to HTTP for private-range registries
// too, where stack speaks HTTPS only.
type httpOnLoopback struct{ next http.RoundTripper }

var errPlainHTTP = errors.New("plain HTTP is used only for registries on localhost or 127.0.0.0/8")

func (t httpOnLoopback) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !loopback(req.URL.Hostname()) {
		return nil, fmt.Errorf("%s: %w", req.URL.Host, errPlainHTTP)
	}
	return t.next.RoundTrip(req)
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
