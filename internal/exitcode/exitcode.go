// Package exitcode is the error that carries the exit status trainwrap should end
// with: the CLI's commands and the supervisor return it, main turns it into the status.
package exitcode

import (
	"errors"
	"fmt"
)

// Error is an error with the exit code trainwrap should end with. A nil Err asks for
// the code alone, with no message: the job's own status, or a failure already shown.
type Error struct {
	Code int
	Err  error
}

// Error is Err's message, or "exit <code>" when there is none.
func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// New returns an *Error with code and err; err may be nil.
func New(code int, err error) error { return &Error{Code: code, Err: err} }

// Of finds the first *Error in err's chain: its code, its message (nil when it asks for
// none) and true; without one, 1, err and false.
func Of(err error) (code int, msg error, ok bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Code, e.Err, true
	}
	return 1, err, false
}
