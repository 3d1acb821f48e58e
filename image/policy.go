package image

import (
	"context"
	"errors"
	"fmt"
)

// PullPolicy says when an image is pulled.
type PullPolicy string

const (
	PullMissing PullPolicy = "missing" // when the store lacks it (default)
	PullAlways  PullPolicy = "always"  // every time
	PullNever   PullPolicy = "never"   // never: the store must have it
)

// Get returns src's image from the store, pulling it with pull as policy
// says. A
// layout or archive on this host is read again under "missing" too: it is
// as cheap as looking it up, and a rebuilt one is then not missed (the
// layers already in the store are not unpacked again).
func (s *Store) Get(ctx context.Context, src Source, policy PullPolicy, pull Puller, opts PullOptions) (*Image, error) {
	switch policy {
	case PullNever:
		img, err := s.Lookup(src)
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w, and pull_policy is never", err)
		}
		return img, err
	case PullMissing, "":
		if src.Kind != Registry {
			break
		}
		// Whatever Lookup finds wrong (a part missing, a blob
		// corrupted), a pull puts right.
		if img, err := s.Lookup(src); err == nil {
			return img, nil
		}
	case PullAlways:
	default:
		return nil, fmt.Errorf("unknown pull policy %q", policy)
	}
	return pull(ctx, s, src, opts)
}
