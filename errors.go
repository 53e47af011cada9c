// Package ferry holds the vocabulary shared by every layer: error codes that
// the transports (GraphQL, REST, the agent protocol) map to statuses in
// exactly one place each.
package ferry

import (
	"errors"
	"fmt"
)

// Error codes. A user sees the message of an Error; anything else is an
// internal error whose cause goes to the log, never to the user.
const (
	ECONFLICT     = "CONFLICT"
	EINTERNAL     = "INTERNAL"
	EINVALID      = "INVALID"
	ENOTFOUND     = "NOT_FOUND"
	EFORBIDDEN    = "FORBIDDEN"
	EUNAUTHORIZED = "UNAUTHENTICATED"
	ERATELIMIT    = "RATE_LIMITED"
)

// Error is an error meant for the user: a code and a readable message.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("ferry error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the *Error in err's chain, or EINTERNAL.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	}
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-facing message of err, or "internal error".
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	}
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
