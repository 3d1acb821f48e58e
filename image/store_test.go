package image

import (
	"testing"

	"github.com/stack-containers/stack/internal/testenv"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	testenv.RequireRoot(t)
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}
