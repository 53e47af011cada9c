package ecsemu

import (
	"fmt"
	"net/http"
)

// apiError is an error answer: the HTTP status and the body ECS sends,
// {"RequestId","HostId","Code","Message","Recommend"}.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

func newErr(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// The codes and messages below are ECS's own (2014-05-26), as its error
// centre and API reference pages list them; the HTTP statuses too.
func errMissing(name string) *apiError {
	return newErr(400, "MissingParameter", "The input parameter %q that is mandatory for processing this request is not supplied.", name)
}

func errInvalid(name string) *apiError {
	return newErr(400, "InvalidParameter", "The specified parameter %q is not valid.", name)
}

func errInvalidWhy(name, why string) *apiError {
	return newErr(400, "InvalidParameter", "The specified parameter %q is not valid: %s.", name, why)
}

var (
	errActionNotFound   = newErr(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
	errVersion          = newErr(400, "InvalidVersion", "Specified parameter Version is not valid.")
	errNonceUsed        = newErr(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
	errTimestampExpired = newErr(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
	errTimestampFormat  = newErr(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
	errAccessKey        = newErr(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
	errAccessKeyOff     = newErr(400, "InvalidAccessKeyId.Inactive", "Specified access key is disabled.")
	errSignatureMethod  = newErr(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
	errForbiddenRAM     = newErr(403, "Forbidden.RAM", "User not authorized to operate on the specified resource, or this API doesn't support RAM.")
	errTokenExpired     = newErr(400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired.")
	errTokenMalformed   = newErr(400, "InvalidSecurityToken.Malformed", "Specified SecurityToken is malformed.")
	errTokenMismatch    = newErr(400, "InvalidSecurityToken.MismatchWithAccessKey", "Specified SecurityToken mismatch with the AccessKey.")
	errDryRun           = newErr(400, "DryRunOperation", "Request validation has been passed with DryRun flag set.")
	errIdempotent       = newErr(400, "IdempotentParameterMismatch", "Request uses a client token in a previous request but is not identical to that request.")
	errPageSize         = newErr(400, "InvalidPageSize.ValueNotSupported", "The specified value of parameter PageSize is not supported.")
	errPageNumber       = newErr(400, "InvalidPageNumber.ValueNotSupported", "The specified value of parameter PageNumber is not supported.")
	errNextToken        = newErr(400, "InvalidParameter.NextToken", "The specified parameter NextToken is not valid.")

	errInstanceNotFound = newErr(404, "InvalidInstanceId.NotFound", "The specified InstanceId does not exist.")
	errDiskNotFound     = newErr(404, "InvalidDiskId.NotFound", "The specified disk does not exist.")
	errSnapshotNotFound = newErr(404, "InvalidSnapshotId.NotFound", "The specified SnapshotId does not exist.")
	errImageNotFound    = newErr(404, "InvalidImageId.NotFound", "The specified ImageId does not exist.")
	errSGNotFound       = newErr(404, "InvalidSecurityGroupId.NotFound", "The specified SecurityGroupId does not exist.")
	errVSwitchNotFound  = newErr(404, "InvalidVSwitchId.NotFound", "The specified VSwitchId does not exist.")
	errVpcNotFound      = newErr(404, "InvalidVpcId.NotFound", "The specified VpcId does not exist.")
	errRegionNotFound   = newErr(404, "InvalidRegionId.NotFound", "The specified RegionId does not exist.")
	errZoneNotFound     = newErr(404, "InvalidZoneId.NotFound", "The specified zone does not exist.")

	errInstanceType      = newErr(400, "InvalidInstanceType.ValueNotSupported", "The specified InstanceType beyond the permitted range.")
	errInstanceStatus    = newErr(403, "IncorrectInstanceStatus", "The current status of the resource does not support this operation.")
	errDiskStatus        = newErr(403, "IncorrectDiskStatus", "The current disk status does not support this operation.")
	errNeverAttached     = newErr(403, "IncorrectDiskStatus.NeverAttached", "The specified disk has never been attached to any instance.")
	errSnapshotRunning   = newErr(403, "IncorrectDiskStatus.CreatingSnapshot", "A previous snapshot creation is in process.")
	errSnapshotQuota     = newErr(403, "QuotaExceed.Snapshot", "The snapshot quota exceeds.")
	errSnapshotNotReady  = newErr(403, "SnapshotNotReady", "The specified snapshot is not ready.")
	errSnapshotImage     = newErr(403, "SnapshotCreatedImage", "The snapshot has been used to create user defined image(s).")
	errSnapshotDisk      = newErr(403, "SnapshotCreatedDisk", "The snapshot has been used to create disk(s).")
	errImageStatus       = newErr(400, "IncorrectImageStatus", "The image is not available.")
	errDiskSize          = newErr(400, "InvalidDataDiskSize.ValueNotSupported", "The specified DataDisk.n.Size beyond the permitted range, or the capacity of snapshot exceeds the size limit of the specified disk category.")
	errDiskCategory      = newErr(400, "InvalidDiskCategory.ValueNotSupported", "The specified disk category is not support.")
	errDiskTooSmall      = newErr(400, "InvalidDiskSize.TooSmall", "The specified disk size is smaller than the current size.")
	errDiskLimit         = newErr(403, "InstanceDiskNumber.LimitExceed", "The amount of the disk on instance in question reach its limits.")
	errZoneMismatch      = newErr(403, "InvalidDiskId.ZoneMismatch", "The specified disk and instance are not in the same zone.")
	errSGInUse           = newErr(403, "DependencyViolation", "There is still instance(s) in the specified security group.")
	errInstanceQuota     = newErr(403, "QuotaExceed.Instance", "Living instances quota exceeded.")
	errDiskQuota         = newErr(403, "QuotaExceed.Disk", "The disk quota exceeds.")
	errUserData          = newErr(400, "InvalidUserData.NotBase64", "The specified parameter UserData should be Base64 encoded.")
	errUserDataSize      = newErr(400, "InvalidUserData.SizeExceeded", "The specified parameter UserData exceeds the size.")
	errAmount            = newErr(400, "InvalidParameter.Amount", "The specified parameter Amount is not valid.")
	errOperationConflict = newErr(409, "OperationConflict", "Request was denied due to conflict with a previous request, please try again later.")
	errThrottling        = newErr(400, "Throttling.User", "Request was denied due to user flow control.")
	errUnavailable       = newErr(503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.")
	errInternal          = newErr(500, "InternalError", "The request processing has failed due to some unknown error, exception or failure.")
)

// faultErrors are the errors a Fault may name by code.
var faultErrors = map[string]*apiError{}

func init() {
	for _, e := range []*apiError{
		errAccessKey, errThrottling, errUnavailable, errInternal, errSnapshotQuota, errInstanceStatus,
		errDiskStatus, errOperationConflict, errForbiddenRAM, errInstanceQuota, errDiskQuota,
		newErr(400, "Throttling", "Request was denied due to request throttling."),
		newErr(400, "Throttling.Api", "Request was denied due to api flow control."),
		newErr(403, "InvalidOperation.Conflict", "Request was denied due to conflict with a previous request, please try again later."),
	} {
		faultErrors[e.Code] = e
	}
}

func statusText(code int) string { return http.StatusText(code) }
