package alibaba

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/ferry-migrate/ferry/engine/cloud"
)

// Kinds of failure beyond engine/cloud's: the cloud asked to slow down, the
// account has no room, the key may not do it. Each also matches one of
// cloud's sentinels with errors.Is (ErrThrottled and ErrQuota as
// ErrConflict; ErrDenied as ErrInvalid), so callers that only know those
// classify them right.
var (
	ErrThrottled = errors.New("throttled")
	ErrQuota     = errors.New("quota exceeded")
	ErrDenied    = errors.New("not authorised")
	// ErrUnknownOutcome: the call timed out or its connection broke, so it
	// may or may not have happened. A call with a ClientToken is repeated;
	// one without is looked up before anything is done again.
	ErrUnknownOutcome = errors.New("outcome unknown")
)

// APIError is a failed ECS (or STS) call.
type APIError struct {
	Action    string
	Object    string
	Status    int    // HTTP status, 0 when no answer came
	Code      string // ECS's error code ("IncorrectDiskStatus")
	Message   string
	RequestID string
	kind      error
	cause     error
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("ECS ")
	b.WriteString(e.Action)
	if e.Object != "" {
		fmt.Fprintf(&b, " %s", e.Object)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, ": %s: %s", e.Code, e.Message)
	} else if e.cause != nil {
		fmt.Fprintf(&b, ": %v", e.cause)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request %s)", e.RequestID)
	}
	return b.String()
}

// Unwrap lets errors.Is see the kind, the engine/cloud sentinel it counts
// as, and the SDK's error.
func (e *APIError) Unwrap() []error {
	out := []error{e.kind}
	switch e.kind {
	case ErrThrottled, ErrQuota:
		out = append(out, cloud.ErrConflict)
	case ErrDenied:
		out = append(out, cloud.ErrInvalid)
	}
	if e.cause != nil {
		out = append(out, e.cause)
	}
	return out
}

// retryable reports whether the call can be repeated as it is: the cloud
// refused it before acting (throttled, unavailable, a conflict it asks to
// retry), or its outcome is unknown and it carries a ClientToken.
func (e *APIError) retryable(idempotent bool) bool {
	switch e.kind {
	case ErrThrottled:
		return true
	case ErrUnknownOutcome:
		return idempotent
	}
	return e.Code == "OperationConflict" || e.Code == "InvalidOperation.Conflict"
}

// classify turns an SDK error into an *APIError with its kind.
func classify(action, object string, err error) *APIError {
	e := &APIError{Action: action, Object: object, cause: err}
	var se *sdkerrors.ServerError
	if errors.As(err, &se) {
		e.Status, e.Code, e.Message, e.RequestID = se.HttpStatus(), se.ErrorCode(), se.Message(), se.RequestId()
		e.kind = kindOf(e.Status, e.Code)
		return e
	}
	var ce *sdkerrors.ClientError
	var ne net.Error
	var ue *url.Error
	switch {
	case errors.As(err, &ce) && ce.ErrorCode() == sdkerrors.TimeoutErrorCode,
		errors.As(err, &ne) && ne.Timeout(),
		errors.As(err, &ue),
		strings.Contains(err.Error(), "Client.Timeout"),
		strings.Contains(err.Error(), "EOF"),
		strings.Contains(err.Error(), "connection reset"),
		strings.Contains(err.Error(), "connection refused"):
		e.kind = ErrUnknownOutcome
	default:
		e.kind = cloud.ErrInvalid
	}
	return e
}

// kindOf maps ECS's error codes to kinds.
func kindOf(status int, code string) error {
	switch {
	case strings.HasPrefix(code, "Throttling"), code == "ServiceUnavailable", code == "InternalError",
		code == "RequestTimeout", code == "UnknownError", status >= 500:
		return ErrThrottled
	case strings.HasPrefix(code, "QuotaExceed"), strings.HasPrefix(code, "QuotaExceeded"), strings.HasSuffix(code, ".LimitExceed"),
		code == "InstanceDiskNumber.LimitExceed", code == "AuthorizationLimitExceed":
		return ErrQuota
	case strings.HasPrefix(code, "Forbidden"), code == "NoPermission", strings.HasPrefix(code, "InvalidAccessKeyId"),
		code == "SignatureDoesNotMatch", strings.HasPrefix(code, "InvalidSecurityToken"), code == "IncompleteSignature",
		code == "InvalidTimeStamp.Expired", code == "SignatureNonceUsed", code == "EntityNotExist.Role":
		return ErrDenied
	case code == "InvalidAction.NotFound":
		return cloud.ErrUnsupported
	case strings.HasSuffix(code, ".NotFound"):
		return cloud.ErrNotFound
	case strings.HasPrefix(code, "Incorrect"), code == "OperationConflict", code == "InvalidOperation.Conflict",
		code == "DependencyViolation", strings.HasPrefix(code, "SnapshotCreated"), code == "IdempotentParameterMismatch",
		code == "SnapshotNotReady", strings.HasSuffix(code, ".Duplicated"), strings.HasSuffix(code, ".InUse"),
		strings.HasSuffix(code, "ZoneMismatch"):
		return cloud.ErrConflict
	case strings.HasSuffix(code, "NotSupported"):
		return cloud.ErrUnsupported
	}
	return cloud.ErrInvalid
}

// Code is the ECS error code of err, or "".
func Code(err error) string {
	var e *APIError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// RetryAfter is how long to wait before asking again after err: 0 unless
// the cloud was throttling.
func RetryAfter(err error) time.Duration {
	if errors.Is(err, ErrThrottled) {
		return 5 * time.Second
	}
	return 0
}
