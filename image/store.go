package image

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
)

// The store's layout under STACK_DATA_DIR/images. Everything under its
// final name is complete and verified: it is made under tmp/ and renamed
// into place, so a pull killed half-way leaves only tmp/ entries, which a
// later pull removes and never reads.
//
//	blobs/sha256/HEX    manifests and configs, by digest
//	layers/HEX/fs       a layer unpacked (HEX its diff ID), an overlay lower dir
//	layers/HEX/size     the bytes of file content in it
//	archives/HEX        an unpacked rootfs archive, by the archive's sum
//	archives/sums/KEY   -> HEX: an archive file's identity to its sum
//	refs/HEX.json       what a reference (HEX: its hash) was pulled as
//	locks/              flock files: store (prune against pulls), one per
//	                    layer and archive being made, one per image in use
//	tmp/                what is being made
const (
	blobsDir    = "blobs/sha256"
	layersDir   = "layers"
	archivesDir = "archives"
	sumsDir     = "archives/sums"
	refsDir     = "refs"
	locksDir    = "locks"
	tmpDir      = "tmp"
)

// Store is the image store of one STACK_DATA_DIR.
type Store struct {
	root string
	// unpackLimit bounds what one unpack writes (see unpackTar).
	unpackLimit int64
}

// SetUnpackLimit bounds what one unpack of an archive or a layer may
// write, in bytes; Open sets DefaultUnpackLimit.
func (s *Store) SetUnpackLimit(n int64) { s.unpackLimit = n }

// Open opens (making it if need be) the store under dataDir.
func Open(dataDir string) (*Store, error) {
	root := filepath.Join(dataDir, "images")
	for _, d := range []string{blobsDir, layersDir, sumsDir, refsDir, locksDir, tmpDir} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("image store: %w", err)
		}
	}
	// The layers are lower dirs of containers whose processes may run as
	// any user: the path down to them must be searchable.
	for _, d := range []string{dataDir, root, filepath.Join(root, layersDir), filepath.Join(root, archivesDir)} {
		if err := os.Chmod(d, 0o711); err != nil {
			return nil, fmt.Errorf("image store: %w", err)
		}
	}
	return &Store{root: root, unpackLimit: DefaultUnpackLimit}, nil
}

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

// Record is what the store knows of an image it holds under a reference.
type Record struct {
	Reference string `json:"reference"`
	// ID is the digest of the image's config, as Docker's image ID.
	ID string `json:"id"`
	// Digest is the manifest's digest; "" for a docker-archive, which
	// has no manifest of the registry's form.
	Digest string `json:"digest,omitempty"`
	// Layers are the diff IDs of the layers, bottom first.
	Layers []string  `json:"layers"`
	Size   int64     `json:"size"`
	Pulled time.Time `json:"pulled"`
}

// Image is an image whose every part is in the store.
type Image struct {
	Record
	// LayerDirs are the unpacked layers, bottom first.
	LayerDirs []string
	Config    Config
}

// ErrNotFound means the store does not hold the image.
var ErrNotFound = errors.New("not in the local store")

func refFile(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:]) + ".json"
}

// Lookup returns the image the store holds for src, with every part of it
// checked to be there.
func (s *Store) Lookup(src Source) (*Image, error) {
	data, err := os.ReadFile(filepath.Join(s.root, refsDir, refFile(src.String())))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("image %s: %w", src, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", src, err)
	}
	var rec Record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("image %s: read its record: %w", src, err)
	}
	return s.load(rec)
}

// load checks that the parts of rec are all in the store.
func (s *Store) load(rec Record) (*Image, error) {
	img := &Image{Record: rec}
	raw, err := s.readBlob(rec.ID)
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", rec.Reference, err)
	}
	if img.Config, err = parseConfig(raw); err != nil {
		return nil, fmt.Errorf("image %s: %w", rec.Reference, err)
	}
	for _, diffID := range rec.Layers {
		dir, ok := s.layerDir(diffID)
		if !ok {
			return nil, fmt.Errorf("image %s: layer %s: %w", rec.Reference, diffID, ErrNotFound)
		}
		img.LayerDirs = append(img.LayerDirs, dir)
	}
	return img, nil
}

// layerDir returns the unpacked tree of the layer with diffID, and whether
// the store has it.
func (s *Store) layerDir(diffID string) (string, bool) {
	hex, ok := strings.CutPrefix(diffID, "sha256:")
	if !ok || !isHex(hex) {
		return "", false
	}
	dir := filepath.Join(s.root, layersDir, hex, "fs")
	st, err := os.Stat(dir)
	return dir, err == nil && st.IsDir()
}

func isHex(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// readBlob reads the blob with digest, and checks it is that blob.
func (s *Store) readBlob(digest string) ([]byte, error) {
	hex, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || !isHex(hex) {
		return nil, fmt.Errorf("blob %q: not a sha256 digest", digest)
	}
	data, err := os.ReadFile(filepath.Join(s.root, blobsDir, hex))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", digest, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if got := sha256.Sum256(data); fmt.Sprintf("sha256:%x", got) != digest {
		return nil, fmt.Errorf("blob %s: corrupted: its content's digest is sha256:%x", digest, got)
	}
	return data, nil
}

// writeBlob stores data as the blob with digest, after checking it is.
func (s *Store) writeBlob(digest string, data []byte) error {
	if got := sha256.Sum256(data); fmt.Sprintf("sha256:%x", got) != digest {
		return fmt.Errorf("blob %s: content has digest sha256:%x", digest, got)
	}
	return s.writeFile(filepath.Join(blobsDir, strings.TrimPrefix(digest, "sha256:")), data)
}

// writeFile writes name (relative to the root) whole or not at all.
func (s *Store) writeFile(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Join(s.root, tmpDir), "file-")
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(s.root, name))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("image store: write %s: %w", name, err)
	}
	return nil
}

// Records lists the images the store holds, whole or not.
func (s *Store) Records() ([]Record, error) {
	entries, err := os.ReadDir(filepath.Join(s.root, refsDir))
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	var recs []Record
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.root, refsDir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("image store: %w", err)
		}
		var rec Record
		if err := json.Unmarshal(data, &rec); err != nil {
			return nil, fmt.Errorf("image store: %s: %w", e.Name(), err)
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// lock is a held flock.
type lock struct{ f *os.File }

// lockFile takes a flock of how (LOCK_SH or LOCK_EX, maybe LOCK_NB) on
// locks/name. Lock files are never removed: unlinking one while another
// process waits on it would let two holders in at once.
func (s *Store) lockFile(name string, how int) (*lock, error) {
	p := filepath.Join(s.root, locksDir, name)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("image store: lock: %w", err)
	}
	if err := linux.IgnoringEINTR(func() error { return unix.Flock(int(f.Fd()), how) }); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errBusy
		}
		return nil, fmt.Errorf("image store: lock %s: %w", p, err)
	}
	return &lock{f: f}, nil
}

var errBusy = errors.New("held by another process")

func (l *lock) release() {
	if l != nil {
		l.f.Close()
	}
}

// storeLock is held shared by every pull and exclusively by prune.
const storeLock = "store"

// InUse is an image (or archive) a running container uses, which prune
// keeps for as long as it is held.
type InUse struct{ l *lock }

// Release ends the use.
func (u *InUse) Release() { u.l.release() }

// Use marks the image in use until Release (or until the process ends,
// since the mark is a flock).
func (s *Store) Use(img *Image) (*InUse, error) {
	l, err := s.lockFile("use-"+strings.TrimPrefix(img.ID, "sha256:"), unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	return &InUse{l: l}, nil
}

// removeStale removes what killed pulls left in tmp/ under prefix; the
// caller holds the lock that a live pull of the same thing would hold.
func (s *Store) removeStale(prefix string) error {
	matches, err := filepath.Glob(filepath.Join(s.root, tmpDir, prefix+"*"))
	if err != nil {
		return err
	}
	for _, m := range matches {
		if err := os.RemoveAll(m); err != nil {
			return fmt.Errorf("image store: remove %s: %w", m, err)
		}
	}
	return nil
}

// layerSize reads the size recorded beside an unpacked layer (0 when
// unknown).
func (s *Store) layerSize(hex string) int64 {
	data, err := os.ReadFile(filepath.Join(s.root, layersDir, hex, "size"))
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	return n
}
