// Package pull gets an image from a registry, an OCI layout or archive,
// or a docker-archive into the image store (package image), which checks
// and keeps its parts:
//
//  1. Resolve: the registry (go-containerregistry, with the Docker
//     config's credentials, plain HTTP only to localhost and 127.0.0.0/8)
//     or the layout or archive gives the image's manifest, an index
//     resolved to the host's platform.
//  2. Fetch: the manifest and config go into the store's blobs, each
//     checked against its digest; each layer not already unpacked is
//     streamed, its blob digest and diff ID checked on the way, and
//     unpacked by the store (Store.PutLayer), three at a time.
//  3. Record: the store maps the reference to the image's config digest
//     and layers.
//
// It is apart from package image for what it links: net/http and
// crypto/tls, go-containerregistry's remote, the Docker config's
// credential helpers, klauspost's gzip and zstd. Their initialisers would
// cost every process of stack at its start; `make build` links this
// package only into the pull program (cmd/stack-pull).
package pull

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	goruntime "runtime"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"

	"github.com/stack-containers/stack/image"
)

// hostPlatform is the platform chosen from a multi-platform index.
func hostPlatform() v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: goruntime.GOARCH}
	if p.Architecture == "arm" {
		p.Variant = "v7"
	}
	return p
}

// Image fetches src into s (what s already holds of it is not fetched
// again) and returns it: an image.Puller. Errors are *image.PullError,
// naming the source and carrying the registry's reason.
func Image(ctx context.Context, s *image.Store, src image.Source, opts image.PullOptions) (*image.Image, error) {
	img, err := pull(ctx, s, src, opts)
	if err != nil {
		return nil, &image.PullError{Source: src.String(), Err: err}
	}
	return img, nil
}

func pull(ctx context.Context, s *image.Store, src image.Source, opts image.PullOptions) (*image.Image, error) {
	platform := hostPlatform()
	unlock, err := s.LockForPull()
	if err != nil {
		return nil, err
	}
	defer unlock()

	var img v1.Image
	switch src.Kind {
	case image.Registry:
		var ref name.Reference
		if ref, err = nameReference(src.Ref); err == nil {
			img, err = remoteImage(ctx, ref, platform)
		}
	case image.OCILayout:
		img, err = layoutImage(src.Path, src.Tag, platform)
	case image.OCIArchive:
		var cleanup func()
		img, cleanup, err = ociArchiveImage(s, src.Path, src.Tag, platform)
		if cleanup != nil {
			defer cleanup()
		}
	case image.DockerArchive:
		img, err = dockerArchiveImage(src)
	default:
		err = fmt.Errorf("unknown kind of source %d", src.Kind)
	}
	if err != nil {
		return nil, err
	}

	rec := image.Record{Reference: src.String(), Pulled: time.Now().UTC()}
	configName, err := img.ConfigName()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	rec.ID = configName.String()
	if err := s.PutBlob(rec.ID, rawConfig); err != nil {
		return nil, err
	}
	cf, diffIDs, err := image.ReadConfig(rawConfig)
	if err != nil {
		return nil, err
	}
	if cf.OS != "" && cf.OS != platform.OS || cf.Architecture != "" && cf.Architecture != platform.Architecture {
		return nil, fmt.Errorf("the image is for %s/%s, not for this host's platform %s", cf.OS, cf.Architecture, platform)
	}
	if src.Kind != image.DockerArchive {
		// A docker-archive has no manifest of the registry's form:
		// go-containerregistry would make one by compressing every
		// layer, only to hash it.
		digest, err := img.Digest()
		if err != nil {
			return nil, fmt.Errorf("manifest: %w", err)
		}
		raw, err := img.RawManifest()
		if err != nil {
			return nil, fmt.Errorf("manifest: %w", err)
		}
		rec.Digest = digest.String()
		if err := s.PutBlob(rec.Digest, raw); err != nil {
			return nil, err
		}
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("layers: %w", err)
	}
	if len(layers) != len(diffIDs) {
		return nil, fmt.Errorf("the manifest has %d layers, the config %d", len(layers), len(diffIDs))
	}
	rec.Layers = diffIDs

	var mu sync.Mutex
	report := func(p image.Progress) {
		if opts.Progress == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		p.Image, p.Count = rec.Reference, len(layers)
		opts.Progress(p)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(3)
	sizes := make([]int64, len(layers))
	for i, layer := range layers {
		g.Go(func() error {
			report := func(p image.Progress) {
				p.Index = i
				report(p)
			}
			size, err := s.PutLayer(rec.Layers[i], report, func(fsDir string) (int64, error) {
				return unpackLayer(gctx, s, layer, rec.Layers[i], src.Kind == image.DockerArchive, fsDir, report)
			})
			sizes[i] = size
			if err != nil {
				return fmt.Errorf("layer %s: %w", rec.Layers[i], err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, n := range sizes {
		rec.Size += n
	}
	return s.PutRecord(rec)
}

// nameReference is ref as go-containerregistry takes it: parsed again
// from what was written, in plain HTTP where stack speaks it.
func nameReference(ref *image.Reference) (name.Reference, error) {
	var opts []name.Option
	if ref.Insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref.String(), opts...)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", ref.String(), err)
	}
	return r, nil
}

// remoteImage resolves ref on its registry, an index to the platform's
// image.
func remoteImage(ctx context.Context, ref name.Reference, platform v1.Platform) (v1.Image, error) {
	return remote.Image(ref,
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithPlatform(platform),
		remote.WithTransport(httpsOnly{remote.DefaultTransport}),
	)
}

// httpsOnly refuses plain HTTP to anything but localhost and 127.0.0.0/8:
// go-containerregistry would also fall back to it for private ranges.
type httpsOnly struct{ next http.RoundTripper }

func (t httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !image.IsLoopback(req.URL.Host) {
		return nil, fmt.Errorf("%s %s: plain HTTP is refused for a registry not on localhost or 127.0.0.0/8", req.Method, req.URL.Redacted())
	}
	return t.next.RoundTrip(req)
}

// refNameAnnotation tags an image in an OCI layout's index.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// layoutImage picks the image tagged tag (or the only one) in the OCI
// layout at dir, an index in it resolved to the platform's image.
func layoutImage(dir, tag string, platform v1.Platform) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("OCI layout: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("OCI layout: %w", err)
	}
	var picked []v1.Descriptor
	for _, d := range im.Manifests {
		if tag == "" || d.Annotations[refNameAnnotation] == tag {
			picked = append(picked, d)
		}
	}
	switch {
	case len(picked) == 0 && tag != "":
		return nil, fmt.Errorf("OCI layout %s: no image tagged %q", dir, tag)
	case len(picked) == 0:
		return nil, fmt.Errorf("OCI layout %s: no image in it", dir)
	case len(picked) > 1 && tag == "":
		return nil, fmt.Errorf("OCI layout %s: %d images in it; name one with :TAG", dir, len(picked))
	}
	return pickImage(idx, picked[0], platform)
}

// pickImage resolves d, an image or an index in idx, to an image for the
// platform.
func pickImage(idx v1.ImageIndex, d v1.Descriptor, platform v1.Platform) (v1.Image, error) {
	switch d.MediaType {
	case types.OCIImageIndex, types.DockerManifestList:
		child, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return nil, err
		}
		im, err := child.IndexManifest()
		if err != nil {
			return nil, err
		}
		for _, c := range im.Manifests {
			if c.Platform != nil && c.Platform.Satisfies(platform) {
				return pickImage(child, c, platform)
			}
		}
		return nil, fmt.Errorf("no image for the platform %s in the index %s", platform, d.Digest)
	default:
		return idx.Image(d.Digest)
	}
}

// ociArchiveImage unpacks the OCI layout archived at p into tmp/ and
// picks its image; cleanup removes the copy.
func ociArchiveImage(s *image.Store, p, tag string, platform v1.Platform) (v1.Image, func(), error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, fmt.Errorf("OCI archive: %w", err)
	}
	defer f.Close()
	dir, err := s.TempDir("oci-archive-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	r, err := decompressed(bufio.NewReader(f))
	if err == nil {
		_, err = s.UnpackTree(r, dir)
	}
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("OCI archive %s: %w", p, err)
	}
	img, err := layoutImage(dir, tag, platform)
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("OCI archive %s: %s", p, strings.TrimPrefix(err.Error(), "OCI layout "+dir+": "))
	}
	return img, cleanup, nil
}

func dockerArchiveImage(src image.Source) (v1.Image, error) {
	var tag *name.Tag
	if src.Ref != nil {
		ref, err := nameReference(src.Ref)
		if err != nil {
			return nil, fmt.Errorf("docker-archive %s: %w", src.Path, err)
		}
		t, ok := ref.(name.Tag)
		if !ok {
			return nil, fmt.Errorf("docker-archive %s: name the image by tag, not digest", src.Path)
		}
		tag = &t
	}
	img, err := tarball.ImageFromPath(src.Path, tag)
	if err != nil {
		return nil, fmt.Errorf("docker-archive %s: %w", src.Path, err)
	}
	return img, nil
}

// unpackLayer streams the layer into fsDir, checking on the way that the
// bytes are those its digests name: the transferred blob's (where the
// source has one) and the uncompressed tar's, its diff ID.
func unpackLayer(ctx context.Context, s *image.Store, layer v1.Layer, diffID string, uncompressed bool, fsDir string, report func(image.Progress)) (int64, error) {
	var (
		rc         io.ReadCloser
		err        error
		wantDigest string
		total      int64
	)
	if uncompressed {
		rc, err = layer.Uncompressed()
	} else {
		var d v1.Hash
		if d, err = layer.Digest(); err == nil {
			wantDigest = d.String()
			total, _ = layer.Size()
			rc, err = layer.Compressed()
		}
	}
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	blobHash := sha256.New()
	counted := &progressReader{ctx: ctx, r: io.TeeReader(rc, blobHash), report: func(done int64) {
		report(image.Progress{Layer: diffID, State: image.LayerFetching, Done: done, Total: total})
	}}
	tr, err := decompressed(bufio.NewReaderSize(counted, 64<<10))
	if err != nil {
		return 0, err
	}
	tarHash := sha256.New()
	tee := io.TeeReader(tr, tarHash)
	size, err := s.UnpackLayer(tee, fsDir)
	if err != nil {
		return 0, err
	}
	// The tar's end-of-archive blocks, and whatever pads the blob after
	// them, count toward the digests too.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return 0, err
	}
	if _, err := io.Copy(io.Discard, counted); err != nil {
		return 0, err
	}
	if wantDigest != "" {
		if got := sum(blobHash); got != wantDigest {
			return 0, fmt.Errorf("corrupted: the blob has digest %s, not %s", got, wantDigest)
		}
	}
	if got := sum(tarHash); got != diffID {
		return 0, fmt.Errorf("corrupted: the uncompressed layer has digest %s, not its diff ID", got)
	}
	return size, nil
}

func sum(h hash.Hash) string { return fmt.Sprintf("sha256:%x", h.Sum(nil)) }

// decompressed reads r as gzip or zstd when it starts with their magic
// number, else as it is.
func decompressed(r *bufio.Reader) (io.Reader, error) {
	magic, err := r.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		gz, err := gzip.NewReader(r)
		if err != nil {
			return nil, err
		}
		// A layer is one gzip stream; what follows it is not tar.
		gz.Multistream(false)
		return gz, nil
	case len(magic) == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd:
		zr, err := zstd.NewReader(r)
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	}
	return r, nil
}

// progressReader counts what is read through it, reports it now and then,
// and stops when its context ends.
type progressReader struct {
	ctx    context.Context
	r      io.Reader
	done   int64
	last   time.Time
	report func(done int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.r.Read(b)
	p.done += int64(n)
	if now := time.Now(); now.Sub(p.last) > 100*time.Millisecond || err != nil {
		p.last = now
		p.report(p.done)
	}
	return n, err
}
