package pullexchange

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stack-containers/stack/image"
)

// exchange runs Exchange for src against Serve with pull, each at its end
// of two pipes, as stack and the pull program are, and returns what
// Exchange returned and what Serve did.
func exchange(t *testing.T, ctx context.Context, src string, pull image.Puller, progress func(image.Progress)) (*image.Image, error, error) {
	t.Helper()
	s, err := image.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	source, err := image.ParseSource(src, "/")
	if err != nil {
		t.Fatal(err)
	}
	requestR, requestW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	eventsR, eventsW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() {
		served <- Serve(context.Background(), requestR, eventsW, pull)
		requestR.Close()
		eventsW.Close()
	}()
	img, err := Exchange(ctx, requestW, eventsR, s, source, image.PullOptions{Progress: progress})
	serveErr := <-served
	eventsR.Close()
	return img, err, serveErr
}

// TestProgressStreamed has the program's pull wait, after its first
// event, until stack has heard of it: were the events held back until
// the pull's end, the test would never end.
func TestProgressStreamed(t *testing.T) {
	heard := make(chan struct{})
	var want []image.Progress
	pull := func(ctx context.Context, s *image.Store, src image.Source, opts image.PullOptions) (*image.Image, error) {
		if src.String() != "localhost:5000/app:v1" {
			return nil, fmt.Errorf("the program was asked for %s", src)
		}
		if opts.Progress == nil {
			return nil, errors.New("stack asked for progress, and the program's pull has none")
		}
		config := []byte(`{"os":"linux","rootfs":{"diff_ids":[]}}`)
		id := fmt.Sprintf("sha256:%x", sha256.Sum256(config))
		for i, state := range []image.LayerState{image.LayerWaiting, image.LayerFetching, image.LayerFetching, image.LayerDone} {
			p := image.Progress{Image: src.String(), Layer: id, Index: 0, Count: 1, State: state, Done: int64(i) * 10, Total: 30}
			want = append(want, p)
			opts.Progress(p)
			if i == 0 {
				<-heard
			}
		}
		if err := s.PutBlob(id, config); err != nil {
			return nil, err
		}
		return s.PutRecord(image.Record{Reference: src.String(), ID: id, Pulled: time.Unix(1, 0).UTC()})
	}
	var got []image.Progress
	img, err, serveErr := exchange(t, context.Background(), "localhost:5000/app:v1", pull, func(p image.Progress) {
		got = append(got, p)
		if len(got) == 1 {
			close(heard)
		}
	})
	if err != nil || serveErr != nil {
		t.Fatalf("exchange: %v; the program: %v", err, serveErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("progress heard:\n%+v\nwant, in the program's order:\n%+v", got, want)
	}
	if img.Reference != "localhost:5000/app:v1" || img.Config.OS != "linux" || !img.Pulled.Equal(time.Unix(1, 0)) {
		t.Errorf("image %+v", img)
	}
}

// TestErrorKeepsItsKind: the error stack gets reads as the program's,
// byte for byte, and is still a *image.PullError of fs.ErrPermission.
func TestErrorKeepsItsKind(t *testing.T) {
	pull := func(ctx context.Context, s *image.Store, src image.Source, opts image.PullOptions) (*image.Image, error) {
		if opts.Progress != nil {
			return nil, errors.New("stack asked for no progress, and the program's pull has some")
		}
		return nil, &image.PullError{Source: src.String(), Err: fmt.Errorf("OCI layout: %w", &fs.PathError{Op: "open", Path: src.Path, Err: fs.ErrPermission})}
	}
	_, err, serveErr := exchange(t, context.Background(), "oci:/layout:v1", pull, nil)
	if serveErr != nil {
		t.Fatalf("the program: %v", serveErr)
	}
	want := "pull oci:/layout:v1: OCI layout: open /layout: permission denied"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
	var pe *image.PullError
	if !errors.As(err, &pe) || pe.Source != "oci:/layout:v1" || pe.Err.Error() != "OCI layout: open /layout: permission denied" {
		t.Errorf("error %#v, want a *image.PullError of oci:/layout:v1", err)
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("error %v is not fs.ErrPermission", err)
	}
}

// TestCancelledByClosedRequest: stack's end of the exchange ends the
// program's pull, and stack waits for it to say so.
func TestCancelledByClosedRequest(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := false
	pull := func(pctx context.Context, s *image.Store, src image.Source, opts image.PullOptions) (*image.Image, error) {
		opts.Progress(image.Progress{Image: src.String()})
		<-pctx.Done()
		cancelled = true
		return nil, &image.PullError{Source: src.String(), Err: fmt.Errorf("layer: %w", pctx.Err())}
	}
	_, err, serveErr := exchange(t, ctx, "oci:/layout", pull, func(image.Progress) { cancel() })
	if serveErr != nil {
		t.Fatalf("the program: %v", serveErr)
	}
	if !cancelled {
		t.Error("the exchange returned before the program's pull ended")
	}
	if !errors.Is(err, context.Canceled) || err.Error() != "pull oci:/layout: layer: context canceled" {
		t.Errorf("error %v, want the program's, of context.Canceled", err)
	}
}

// TestNoReply: a program that ends before its last event is ErrNoReply,
// and a store that will not open is an error of no pull.
func TestNoReply(t *testing.T) {
	s, err := image.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	src, _ := image.ParseSource("oci:/layout", "/")
	requestR, requestW, _ := os.Pipe()
	eventsR, eventsW, _ := os.Pipe()
	defer requestR.Close()
	eventsW.Close()
	if _, err := Exchange(context.Background(), requestW, eventsR, s, src, image.PullOptions{}); !errors.Is(err, ErrNoReply) {
		t.Errorf("error %v, want ErrNoReply", err)
	}

	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	eventsR, eventsW, _ = os.Pipe()
	defer eventsR.Close()
	r, w, _ := os.Pipe()
	w.Write([]byte(`{"dataDir":"` + notDir + `","source":{"kind":1,"path":"/layout"}}` + "\n"))
	w.Close()
	if err := Serve(context.Background(), r, eventsW, nil); err != nil {
		t.Fatal(err)
	}
	eventsW.Close()
	var pe *image.PullError
	_, err = Exchange(context.Background(), nopCloser{}, eventsR, s, src, image.PullOptions{})
	if err == nil || errors.As(err, &pe) || !strings.HasPrefix(err.Error(), "image store: mkdir "+notDir+": not a directory") {
		t.Errorf("error %v, want the store's own, of no pull", err)
	}
}

type nopCloser struct{}

func (nopCloser) Write(p []byte) (int, error) { return len(p), nil }
func (nopCloser) Close() error                { return nil }
