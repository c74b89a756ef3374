package pin

import (
	"errors"
	"fmt"
)

// Application error codes. The HTTP layer maps each code to a status in one
// place (server/problem.go); everything else only picks a code.
const (
	ECONFLICT     = "conflict"     // the resource is busy or exists (409)
	EFORBIDDEN    = "forbidden"    // understood but not allowed (403)
	EINTERNAL     = "internal"     // a bug or an unexpected failure (500)
	EINVALID      = "invalid"      // the request is malformed (400)
	ENOTFOUND     = "not_found"    // no such resource (404)
	ETIMEOUT      = "timeout"      // the work ran past its time limit (504)
	ETOOLARGE     = "too_large"    // the request body is too big (413)
	ETOOMANY      = "too_many"     // too many requests at once (429)
	EUNAUTHORIZED = "unauthorized" // missing or wrong credentials (401)
	EUNAVAILABLE  = "unavailable"  // a dependency is down; retry later (503)
)

// Error is an application error: a code and a sentence a user can act on.
type Error struct {
	Code    string
	Message string
	// Detail carries structured data for the response (for example the list
	// of invalid records); nil when there is none.
	Detail any
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("pinpipe error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of an application error in err's chain.
// Returns EINTERNAL when err is not an application error and "" when err is nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the human message of an application error in err's chain.
// Returns "Internal error." for any other error, so no internal detail leaks to users.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}
