// Package wireerror carries an error across a pipe between two of stack's
// own processes (the background supervisor and up -d, the embedded
// programs and the stack binary that runs them). An error loses its type
// on the way: what crosses is its message and the name of the one known
// error it is, by errors.Is, and the other side rebuilds an error that
// reads as the message and unwraps to that known error, so that both
// sides print the same text and decide the same.
//
// Each exchange lists the errors whose identity it keeps as Kinds. Only
// one name crosses, and an error may be several of them (one wraps
// another, or errors.Join holds both): the first listed that the error is
// wins, and the rebuilt error is that one alone. List first the kind that
// the other side must not miss.
package wireerror

import "errors"

// Kind is a known error and the name it crosses under.
type Kind struct {
	Name string
	Err  error
}

// Kinds are the errors one exchange keeps the identity of, in order of
// precedence.
type Kinds []Kind

// Of is the name of the first of ks that err is, "" for none (nil
// included).
func (ks Kinds) Of(err error) string {
	for _, k := range ks {
		if errors.Is(err, k.Err) {
			return k.Name
		}
	}
	return ""
}

// Error is the error that crossed as msg and the kind name: it reads as
// msg and unwraps to the kind's error, or to none for a name not in ks.
func (ks Kinds) Error(msg, name string) error {
	e := &crossedError{msg: msg}
	for _, k := range ks {
		if k.Name == name {
			e.kind = k.Err
			break
		}
	}
	return e
}

// crossedError is an error from the process at the other end of a pipe.
type crossedError struct {
	msg  string
	kind error
}

func (e *crossedError) Error() string { return e.msg }
func (e *crossedError) Unwrap() error { return e.kind }
