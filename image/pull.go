package image

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
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
	"golang.org/x/sys/unix"
)

// PullOptions tune Pull; the zero value pulls for the host's platform with
// the Docker config's credentials.
type PullOptions struct {
	// Platform is the one chosen from an index; default the host's.
	Platform *v1.Platform
	// Progress, if set, hears of every layer's progress, one call at a time.
	Progress func(Progress)
	// Transport carries the registry's requests; default Go's.
	Transport http.RoundTripper
	// Keychain gives credentials; default the Docker config's
	// ($DOCKER_CONFIG/config.json, else ~/.docker/config.json).
	Keychain authn.Keychain
}

// LayerState is where one layer of a pull is.
type LayerState int

const (
	LayerWaiting  LayerState = iota // another pull is unpacking it
	LayerFetching                   // Done of Total bytes read
	LayerDone                       // fetched, verified and unpacked
	LayerExists                     // already in the store
)

// Progress is news of one layer of a pull.
type Progress struct {
	Image string // the source, as Source.String
	Layer string // the layer's diff ID
	Index int    // the layer's place, from 0 at the bottom
	Count int    // how many layers the image has
	State LayerState
	// Done and Total are bytes of the layer as transferred (compressed);
	// Total is 0 when unknown.
	Done, Total int64
}

// HostPlatform is the platform chosen from a multi-platform index.
func HostPlatform() v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: goruntime.GOARCH}
	if p.Architecture == "arm" {
		p.Variant = "v7"
	}
	return p
}

// Pull fetches src into the store (what it already holds of it is not
// fetched again) and returns it. Errors name the source and carry the
// registry's reason.
func (s *Store) Pull(ctx context.Context, src Source, opts PullOptions) (*Image, error) {
	img, err := s.pull(ctx, src, opts)
	if err != nil {
		return nil, &PullError{Source: src.String(), Err: err}
	}
	return img, nil
}

// PullError is a pull that failed: the source, and the registry's (or
// the layout's or archive's) reason.
type PullError struct {
	Source string
	Err    error
}

func (e *PullError) Error() string { return "pull " + e.Source + ": " + e.Err.Error() }
func (e *PullError) Unwrap() error { return e.Err }

func (s *Store) pull(ctx context.Context, src Source, opts PullOptions) (*Image, error) {
	if opts.Platform == nil {
		p := HostPlatform()
		opts.Platform = &p
	}
	// Shared: pulls go on side by side; prune waits for them to end.
	held, err := s.lockFile(storeLock, unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer held.release()

	var img v1.Image
	switch src.Kind {
	case Registry:
		img, err = remoteImage(ctx, src.Ref, opts)
	case OCILayout:
		img, err = layoutImage(src.Path, src.Tag, *opts.Platform)
	case OCIArchive:
		var cleanup func()
		img, cleanup, err = s.ociArchiveImage(src.Path, src.Tag, *opts.Platform)
		if cleanup != nil {
			defer cleanup()
		}
	case DockerArchive:
		img, err = dockerArchiveImage(src)
	default:
		err = fmt.Errorf("unknown kind of source %d", src.Kind)
	}
	if err != nil {
		return nil, err
	}

	rec := Record{Reference: src.String(), Pulled: time.Now().UTC()}
	configName, err := img.ConfigName()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	rec.ID = configName.String()
	if err := s.writeBlob(rec.ID, rawConfig); err != nil {
		return nil, err
	}
	cf, err := decodeConfig(rawConfig)
	if err != nil {
		return nil, err
	}
	if cf.OS != "" && cf.OS != opts.Platform.OS || cf.Architecture != "" && cf.Architecture != opts.Platform.Architecture {
		return nil, fmt.Errorf("the image is for %s/%s, not for this host's platform %s", cf.OS, cf.Architecture, opts.Platform)
	}
	if src.Kind != DockerArchive {
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
		if err := s.writeBlob(rec.Digest, raw); err != nil {
			return nil, err
		}
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("layers: %w", err)
	}
	if len(layers) != len(cf.RootFS.DiffIDs) {
		return nil, fmt.Errorf("the manifest has %d layers, the config %d", len(layers), len(cf.RootFS.DiffIDs))
	}
	rec.Layers = cf.RootFS.DiffIDs

	var mu sync.Mutex
	report := func(p Progress) {
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
			size, err := s.fetchLayer(gctx, layer, rec.Layers[i], src.Kind == DockerArchive, func(p Progress) {
				p.Index = i
				report(p)
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
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := s.writeFile(filepath.Join(refsDir, refFile(rec.Reference)), append(data, '\n')); err != nil {
		return nil, err
	}
	return s.load(rec)
}

// remoteImage resolves ref on its registry, an index to the platform's
// image.
func remoteImage(ctx context.Context, ref name.Reference, opts PullOptions) (v1.Image, error) {
	keychain := opts.Keychain
	if keychain == nil {
		keychain = authn.DefaultKeychain
	}
	base := opts.Transport
	if base == nil {
		base = remote.DefaultTransport
	}
	return remote.Image(ref,
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(keychain),
		remote.WithPlatform(*opts.Platform),
		remote.WithTransport(httpsOnly{base}),
	)
}

// httpsOnly refuses plain HTTP to anything but localhost and 127.0.0.0/8:
// go-containerregistry would also fall back to it for private ranges.
type httpsOnly struct{ next http.RoundTripper }

func (t httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !isLoopback(req.URL.Host) {
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
func (s *Store) ociArchiveImage(p, tag string, platform v1.Platform) (v1.Image, func(), error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, fmt.Errorf("OCI archive: %w", err)
	}
	defer f.Close()
	dir, err := os.MkdirTemp(filepath.Join(s.root, tmpDir), "oci-archive-")
	if err != nil {
		return nil, nil, fmt.Errorf("image store: %w", err)
	}
	cleanup := func() { os.RemoveAll(dir) }
	r, err := decompressed(bufio.NewReader(f))
	if err == nil {
		_, err = unpackTar(r, dir, asRootfs, s.unpackLimit)
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

func dockerArchiveImage(src Source) (v1.Image, error) {
	var tag *name.Tag
	if src.Ref != nil {
		t, ok := src.Ref.(name.Tag)
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

// fetchLayer makes sure the layer with diffID is unpacked in the store,
// fetching it unless it is there, and returns its size. Of two pulls of
// one layer at once, the second waits on the layer's lock and then finds
// it there.
func (s *Store) fetchLayer(ctx context.Context, layer v1.Layer, diffID string, uncompressed bool, report func(Progress)) (int64, error) {
	hexID, ok := strings.CutPrefix(diffID, "sha256:")
	if !ok || !isHex(hexID) {
		return 0, fmt.Errorf("diff ID %q: not a sha256 digest", diffID)
	}
	if _, ok := s.layerDir(diffID); ok {
		report(Progress{Layer: diffID, State: LayerExists})
		return s.layerSize(hexID), nil
	}
	l, err := s.lockFile("layer-"+hexID, unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, errBusy) {
		report(Progress{Layer: diffID, State: LayerWaiting})
		l, err = s.lockFile("layer-"+hexID, unix.LOCK_EX)
	}
	if err != nil {
		return 0, err
	}
	defer l.release()
	if _, ok := s.layerDir(diffID); ok {
		report(Progress{Layer: diffID, State: LayerExists})
		return s.layerSize(hexID), nil
	}
	// Holding the lock, whatever tmp/ has of this layer is a dead pull's.
	if err := s.removeStale("layer-" + hexID + "-"); err != nil {
		return 0, err
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.root, tmpDir), "layer-"+hexID+"-")
	if err != nil {
		return 0, fmt.Errorf("image store: %w", err)
	}
	size, err := s.unpackLayer(ctx, layer, diffID, uncompressed, tmp, report)
	if err == nil {
		err = os.WriteFile(filepath.Join(tmp, "size"), []byte(strconv.FormatInt(size, 10)+"\n"), 0o644)
	}
	if err == nil {
		err = unix.Chmod(tmp, 0o711)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.root, layersDir, hexID))
	}
	if err != nil {
		os.RemoveAll(tmp)
		return 0, err
	}
	report(Progress{Layer: diffID, State: LayerDone})
	return size, nil
}

// unpackLayer streams the layer into tmp/fs, checking on the way that the
// bytes are those its digests name: the transferred blob's (where the
// source has one) and the uncompressed tar's, its diff ID.
func (s *Store) unpackLayer(ctx context.Context, layer v1.Layer, diffID string, uncompressed bool, tmp string, report func(Progress)) (int64, error) {
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
		report(Progress{Layer: diffID, State: LayerFetching, Done: done, Total: total})
	}}
	tr, err := decompressed(bufio.NewReaderSize(counted, 64<<10))
	if err != nil {
		return 0, err
	}
	tarHash := sha256.New()
	fsDir := filepath.Join(tmp, "fs")
	if err := os.Mkdir(fsDir, 0o755); err != nil {
		return 0, err
	}
	tee := io.TeeReader(tr, tarHash)
	size, err := unpackTar(tee, fsDir, asLayer, s.unpackLimit)
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
