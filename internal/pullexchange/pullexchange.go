// Package pullexchange is what stack and the pull program (cmd/stack-pull)
// exchange for one pull of an image. The program links the registry
// client (package image/pull), which stack does not, so that no command
// but a pull pays its initialisers at its start; `make build` embeds it
// into the stack binary, which runs it from a sealed memfd (package
// memexec), one program per image pulled.
//
//	stack (Exchange)                     pull program (Serve)
//	    | -- Request (JSON, fd 3) -------> |  opens the store, pulls
//	    | <---------- Event: progress ---- |  as each layer advances,
//	    | <---------- Event: progress ---- |  when stack asked for it
//	    | <------ Event: image or error -- |  and exits 0
//	    | -- closes fd 3 ----------------> |
//
// A Request's fd closed before the last event (stack was interrupted, or
// died) cancels the pull: the program removes what it had half made and
// ends. The store's flocks work across processes as they do within one:
// pulls of the same layer at once, in one program or several, fetch it
// once.
//
// An error crosses as its message, the source of its *image.PullError,
// and its kind: what callers test with errors.Is (fs.ErrPermission for
// the root hint, context.Canceled for an interrupted start,
// image.ErrNotFound), so that both sides print and decide the same.
package pullexchange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"

	"github.com/stack-containers/stack/image"
	"github.com/stack-containers/stack/internal/wireerror"
)

// The program's descriptors: the request comes on RequestFD, the events
// go to EventFD.
const (
	RequestFD = 3
	EventFD   = 4
)

// Request is one pull.
type Request struct {
	// DataDir is the store's data directory (image.Open's).
	DataDir     string `json:"dataDir"`
	UnpackLimit int64  `json:"unpackLimit,omitempty"`
	Source      Source `json:"source"`
	// Progress asks for the progress events.
	Progress bool `json:"progress,omitempty"`
}

// Source is an image.Source, its reference as text.
type Source struct {
	Kind image.Kind `json:"kind"`
	Ref  string     `json:"ref,omitempty"`
	Path string     `json:"path,omitempty"`
	Tag  string     `json:"tag,omitempty"`
}

// Event is one of the program's messages: exactly one field is set, and
// the last has Image or Error.
type Event struct {
	Progress *image.Progress `json:"progress,omitempty"`
	Image    *image.Record   `json:"image,omitempty"`
	Error    *Error          `json:"error,omitempty"`
}

// Error is a failed pull.
type Error struct {
	// Source is the *image.PullError's, and Message its Err's; an error
	// of no pull (the store would not open) has no Source.
	Source  string `json:"source,omitempty"`
	Message string `json:"message"`
	// Kind names the first of kinds that the error is.
	Kind string `json:"kind,omitempty"`
}

// kinds are the errors an Error keeps the identity of.
var kinds = wireerror.Kinds{
	{Name: "permission", Err: fs.ErrPermission},
	{Name: "not-exist", Err: fs.ErrNotExist},
	{Name: "canceled", Err: context.Canceled},
	{Name: "deadline", Err: context.DeadlineExceeded},
	{Name: "not-found", Err: image.ErrNotFound},
}

// ErrNoReply is an exchange whose program ended, or broke it, before its
// last event.
var ErrNoReply = errors.New("the pull program ended without a reply")

func sourceOf(src image.Source) Source {
	s := Source{Kind: src.Kind, Path: src.Path, Tag: src.Tag}
	if src.Ref != nil {
		s.Ref = src.Ref.String()
	}
	return s
}

func (s Source) source() (image.Source, error) {
	src := image.Source{Kind: s.Kind, Path: s.Path, Tag: s.Tag}
	if s.Ref != "" {
		ref, err := image.ParseReference(s.Ref)
		if err != nil {
			return src, err
		}
		src.Ref = ref
	}
	return src, nil
}

func errorOf(err error) *Error {
	e := &Error{Message: err.Error(), Kind: kinds.Of(err)}
	var pe *image.PullError
	if errors.As(err, &pe) {
		e.Source, e.Message = pe.Source, pe.Err.Error()
	}
	return e
}

// err is the error e stands for: an *image.PullError when it was one,
// whose Err reads as the program's and is its kind.
func (e *Error) err() error {
	err := kinds.Error(e.Message, e.Kind)
	if e.Source != "" {
		err = &image.PullError{Source: e.Source, Err: err}
	}
	return err
}

// Serve is the program's side: it reads the request from requests, pulls
// with pull and sends the events to events. The pull is cancelled when
// requests ends (stack closed it, or died). The error is the exchange's
// own, which stack cannot be told.
func Serve(ctx context.Context, requests io.Reader, events io.Writer, pull image.Puller) error {
	var req Request
	dec := json.NewDecoder(requests)
	if err := dec.Decode(&req); err != nil {
		return fmt.Errorf("read the request: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		// Nothing more comes: what ends the wait is stack's end of the
		// pipe closing.
		io.Copy(io.Discard, io.MultiReader(dec.Buffered(), requests))
		cancel()
	}()
	var (
		mu      sync.Mutex
		sendErr error
	)
	enc := json.NewEncoder(events)
	send := func(ev Event) error {
		mu.Lock()
		defer mu.Unlock()
		if sendErr == nil {
			sendErr = enc.Encode(ev)
		}
		return sendErr
	}
	var opts image.PullOptions
	if req.Progress {
		opts.Progress = func(p image.Progress) {
			if send(Event{Progress: &p}) != nil {
				// stack is gone: so is the reason to pull.
				cancel()
			}
		}
	}
	img, err := pullRequest(ctx, req, pull, opts)
	var last Event
	if err != nil {
		last.Error = errorOf(err)
	} else {
		last.Image = &img.Record
	}
	if err := send(last); err != nil {
		return fmt.Errorf("send the events: %w", err)
	}
	return nil
}

func pullRequest(ctx context.Context, req Request, pull image.Puller, opts image.PullOptions) (*image.Image, error) {
	store, err := image.Open(req.DataDir)
	if err != nil {
		return nil, err
	}
	if req.UnpackLimit > 0 {
		store.SetUnpackLimit(req.UnpackLimit)
	}
	src, err := req.Source.source()
	if err != nil {
		return nil, err
	}
	return pull(ctx, store, src, opts)
}

// Exchange is stack's side: it sends the request for src to requests,
// hands every progress event to opts.Progress as it comes, and returns
// the image as s holds it, or the program's error. It closes requests
// once the last event came, or as soon as ctx ends, which cancels the
// program's pull; it then still waits for the last event, so that the
// program has cleaned up when it returns. A program that ends without
// its last event is ErrNoReply.
func Exchange(ctx context.Context, requests io.WriteCloser, events io.Reader, s *image.Store, src image.Source, opts image.PullOptions) (*image.Image, error) {
	var closeOnce sync.Once
	closeRequests := func() { closeOnce.Do(func() { requests.Close() }) }
	defer closeRequests()
	stop := context.AfterFunc(ctx, closeRequests)
	defer stop()
	req := Request{DataDir: s.DataDir(), UnpackLimit: s.UnpackLimit(), Source: sourceOf(src), Progress: opts.Progress != nil}
	if err := json.NewEncoder(requests).Encode(req); err != nil {
		return nil, noReply(ctx, src, err)
	}
	dec := json.NewDecoder(events)
	for {
		var ev Event
		if err := dec.Decode(&ev); err != nil {
			return nil, noReply(ctx, src, err)
		}
		switch {
		case ev.Progress != nil:
			if opts.Progress != nil {
				opts.Progress(*ev.Progress)
			}
		case ev.Error != nil:
			return nil, ev.Error.err()
		case ev.Image != nil:
			return s.Load(*ev.Image)
		}
	}
}

// noReply is the error of an exchange that broke with err: the end of
// ctx when it had ended (the program may have been killed with stack's
// process group), else ErrNoReply.
func noReply(ctx context.Context, src image.Source, err error) error {
	if ctx.Err() != nil {
		return &image.PullError{Source: src.String(), Err: ctx.Err()}
	}
	return fmt.Errorf("%w: %w", ErrNoReply, err)
}
