package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The store's side of a pull. Package image/pull resolves an image at its
// registry, layout or archive and hands its parts to these: the store
// checks them against their digests, makes each under tmp/ and renames it
// into place, and keeps the locks that let pulls of several processes at
// once share the work. Fetching is apart because what it links (an HTTP
// and TLS client, the Docker config's credential helpers, zstd) costs
// every process of stack its initialisers at its start; only the pull
// program (cmd/stack-pull) links it where `make build` builds stack.

// Puller pulls src into s (what s already holds of it is not fetched
// again) and returns it; its errors are *PullError. The supervisor and
// `stack pull` are given one: the pull program's, or image/pull's own.
type Puller func(ctx context.Context, s *Store, src Source, opts PullOptions) (*Image, error)

// LockForPull holds the store for a pull until unlock: pulls go on side by
// side, and prune waits for them to end.
func (s *Store) LockForPull() (unlock func(), err error) {
	held, err := s.lockFile(storeLock, unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	return held.release, nil
}

// PutBlob stores data (a manifest or a config) as the blob with digest,
// after checking it is.
func (s *Store) PutBlob(digest string, data []byte) error { return s.writeBlob(digest, data) }

// PutLayer makes sure the layer with diffID is unpacked in the store,
// calling unpack to fill fsDir (a new empty directory) unless it is there,
// and returns its size. Of two pulls of one layer at once, in this process
// or another, the second waits on the layer's lock (LayerWaiting) and then
// finds it there (LayerExists). report hears of the layer's state with
// its Layer and State set; unpack reports its own progress.
func (s *Store) PutLayer(diffID string, report func(Progress), unpack func(fsDir string) (int64, error)) (int64, error) {
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
	fsDir := filepath.Join(tmp, "fs")
	size, err := int64(0), os.Mkdir(fsDir, 0o755)
	if err == nil {
		size, err = unpack(fsDir)
	}
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

// UnpackLayer extracts a layer's tar read from r into dir, its whiteouts
// turned into overlayfs's, within the store's unpack limit, and returns
// the bytes of file content it wrote.
func (s *Store) UnpackLayer(r io.Reader, dir string) (int64, error) {
	return unpackTar(r, dir, asLayer, s.unpackLimit)
}

// UnpackTree extracts a tar of a whole tree (an OCI layout archived)
// read from r into dir, as it is, within the store's unpack limit.
func (s *Store) UnpackTree(r io.Reader, dir string) (int64, error) {
	return unpackTar(r, dir, asRootfs, s.unpackLimit)
}

// TempDir makes a directory under tmp/ for what a pull reads aside (an
// OCI archive unpacked); the caller removes it. A prune removes what a
// killed pull left there.
func (s *Store) TempDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp(filepath.Join(s.root, tmpDir), prefix)
	if err != nil {
		return "", fmt.Errorf("image store: %w", err)
	}
	return dir, nil
}

// PutRecord records rec, an image whose config and layers are in the
// store, under its reference, and returns it.
func (s *Store) PutRecord(rec Record) (*Image, error) {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := s.writeFile(filepath.Join(refsDir, refFile(rec.Reference)), append(data, '\n')); err != nil {
		return nil, err
	}
	return s.load(rec)
}

// Load returns the image of rec (as another process pulled it), with
// every part of it checked to be there.
func (s *Store) Load(rec Record) (*Image, error) { return s.load(rec) }

// DataDir is the data directory the store lives in (as Open took it).
func (s *Store) DataDir() string { return filepath.Dir(s.root) }

// UnpackLimit is what one unpack may write, in bytes.
func (s *Store) UnpackLimit() int64 { return s.unpackLimit }
