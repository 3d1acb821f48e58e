// Package export is what the stack CLI and the export program
// (cmd/stack-export) exchange for `stack export kubernetes`. The program
// links the Kubernetes API types, which the CLI does not, so that no other
// command pays their initialisers at its start; `make build` embeds it
// into the stack binary, which runs it from a sealed memfd (package
// memexec).
//
//	stack CLI                           export program
//	    | -- Options (JSON, fd 3) -------> |  checks the options
//	    | <------------ Reply (fd 4) ---- |  an error ends it here
//	    |   reads and validates the
//	    |   manifest
//	    | -- the stack (JSON, fd 3) -----> |  converts, pushes, writes
//	    |                                  |  to its stdout and stderr
//	    | <------------ Reply (fd 4) ---- |
//
// The options are checked before the manifest is read, as they always
// were: a bad --namespace is the error a user sees, whatever the
// manifest's. A request that ends before the stack (the manifest was
// invalid) ends the program without a reply.
package export

import (
	"errors"
	"io/fs"

	"github.com/stack-containers/stack/internal/wireerror"
)

// The program's descriptors: the requests come on RequestFD, the replies
// go to ReplyFD.
const (
	RequestFD = 3
	ReplyFD   = 4
)

// Options are the command line of `stack export kubernetes`.
type Options struct {
	// Dir is -o: a directory for one file per object, or "-" for stdout.
	Dir string `json:"dir"`
	// Registry is --image-registry.
	Registry string `json:"registry,omitempty"`
	// Namespace is --namespace.
	Namespace string `json:"namespace,omitempty"`
	// Source is the manifest's path as the user gave it.
	Source string `json:"source,omitempty"`
	// DataDir is stack's data directory, whose image store names pulled
	// images by digest; empty for none.
	DataDir string `json:"dataDir,omitempty"`
}

// Error is an export's failure as the CLI reports it: the error, its
// exit status and a hint, if one helps.
type Error struct {
	Code int
	Err  error
	Hint string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Reply is the program's answer to a request: empty once it succeeded.
// The error loses its type on the way: Kind names the one of replyKinds
// it was, and the CLI gets back an error that reads as the program's and
// is that kind (package wireerror).
type Reply struct {
	Error string `json:"error,omitempty"`
	Hint  string `json:"hint,omitempty"`
	Code  int    `json:"code,omitempty"`
	Kind  string `json:"kind,omitempty"`
}

// replyKinds are the errors the CLI acts on: fs.ErrPermission, for which
// it hints at root.
var replyKinds = wireerror.Kinds{
	{Name: "permission", Err: fs.ErrPermission},
}

// ReplyOf is the reply that stands for err, nil included.
func ReplyOf(err error) Reply {
	if err == nil {
		return Reply{}
	}
	r := Reply{Error: err.Error(), Code: 1, Kind: replyKinds.Of(err)}
	var e *Error
	if errors.As(err, &e) {
		r.Code, r.Hint = e.Code, e.Hint
	}
	return r
}

// Err is the error the reply stands for, nil for success: an *Error that
// reads as the program's did.
func (r Reply) Err() error {
	if r.Error == "" {
		return nil
	}
	return &Error{Code: r.Code, Err: replyKinds.Error(r.Error, r.Kind), Hint: r.Hint}
}
