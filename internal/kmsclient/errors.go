package kmsclient

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Class is what a reconciler needs to know about a failed KMS call.
type Class int

const (
	// Transient faults (network, 5xx, unknown errors) are retried with backoff.
	Transient Class = iota
	// NotFound: the key, alias or grant does not exist.
	NotFound
	// AlreadyExists: the alias (or other named resource) exists already.
	AlreadyExists
	// InvalidState: the key's state forbids the call (PendingDeletion,
	// Disabled, PendingImport, Unavailable).
	InvalidState
	// Throttled: a request quota was exceeded; retry after a backoff.
	Throttled
	// MalformedPolicy: KMS rejected a policy. It may be IAM propagation of a
	// principal created seconds ago, so it is retried a few times before it
	// is treated as Invalid.
	MalformedPolicy
	// Invalid: the request can never succeed as it is (validation, unsupported
	// operation, lockout-unsafe policy, limit exceeded). Terminal until the spec
	// changes.
	Invalid
	// UnknownPrincipal: KMS does not know a principal the request names
	// (InvalidArnException). An IAM role created seconds ago is unknown to KMS
	// until IAM propagates it, so it is retried a while before it is Invalid.
	UnknownPrincipal
	// AccessDenied: IAM or the key policy denies the call. Only an IAM change
	// fixes it, never the spec: retried with backoff.
	AccessDenied
)

func (c Class) String() string {
	switch c {
	case NotFound:
		return "NotFound"
	case AlreadyExists:
		return "AlreadyExists"
	case InvalidState:
		return "InvalidState"
	case Throttled:
		return "Throttled"
	case MalformedPolicy:
		return "MalformedPolicy"
	case Invalid:
		return "Invalid"
	case UnknownPrincipal:
		return "UnknownPrincipal"
	case AccessDenied:
		return "AccessDenied"
	default:
		return "Transient"
	}
}

// Error is a classified KMS error. Message is KMS's own text, safe to show in
// status: it never contains grant tokens or credentials.
type Error struct {
	Op      string // KMS operation, e.g. "CreateKey"
	Class   Class
	Code    string // KMS error code, e.g. "NotFoundException"
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("kms %s: %s", e.Op, e.Message)
	}
	return fmt.Sprintf("kms %s: %s: %s", e.Op, e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// ClassOf returns the class of err; errors not from this package are Transient.
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return Transient
}

// IsNotFound reports whether err says the KMS resource does not exist.
func IsNotFound(err error) bool { return err != nil && ClassOf(err) == NotFound }

// IsIncorrectKeyMaterial reports whether KMS refused imported key material
// as not the key's: the way to tell, without reading any material back,
// that it differs from what the key holds.
func IsIncorrectKeyMaterial(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == "IncorrectKeyMaterialException"
}

// NewError returns a classified error like the SDK adapter's, for fakes and
// tests.
func NewError(op string, class Class, code, msg string) error {
	return &Error{Op: op, Class: class, Code: code, Message: msg}
}

// CodeError returns the error KMS operation op answers with error code code,
// classified as the SDK adapter classifies it: for fakes.
func CodeError(op, code, msg string) error {
	return &Error{Op: op, Class: classOf(code, nil), Code: code, Message: msg}
}

// codeClasses is the one table from KMS error codes to classes. Codes not
// listed (KMSInternalException, DependencyTimeoutException,
// KeyUnavailableException, ...) are Transient.
var codeClasses = map[string]Class{
	"NotFoundException":                NotFound,
	"AlreadyExistsException":           AlreadyExists,
	"KMSInvalidStateException":         InvalidState,
	"DisabledException":                InvalidState,
	"ThrottlingException":              Throttled,
	"MalformedPolicyDocumentException": MalformedPolicy,
	"ValidationException":              Invalid,
	"InvalidArnException":              UnknownPrincipal,
	"UnsupportedOperationException":    Invalid,
	"TagException":                     Invalid,
	"LimitExceededException":           Invalid,
	"InvalidGrantTokenException":       Invalid,
	"InvalidGrantIdException":          Invalid,
	"InvalidAliasNameException":        Invalid,
	"InvalidMarkerException":           Invalid,
	"InvalidKeyUsageException":         Invalid,
	// ImportKeyMaterial: the material does not match the key (another
	// material than the one named, or any change of an asymmetric or HMAC
	// key's material), or was not wrapped with the import parameters.
	"IncorrectKeyMaterialException": Invalid,
	"InvalidCiphertextException":    Invalid,
	"InvalidImportTokenException":   Invalid,
	// CreateAlias answers it for the reserved alias/aws/ prefix.
	"NotAuthorizedException": Invalid,
	"AccessDeniedException":  AccessDenied,
	// STS (AssumeRole of an AWSAccount's role) says it without the suffix.
	"AccessDenied": AccessDenied,
}

// classify wraps an SDK error from KMS operation op into an *Error.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	e := &Error{Op: op, Message: err.Error(), Err: err}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		e.Code, e.Message = apiErr.ErrorCode(), apiErr.ErrorMessage()
	}
	e.Class = classOf(e.Code, err)
	return e
}

func classOf(code string, err error) Class {
	if c, ok := codeClasses[code]; ok {
		return c
	}
	var quota ratelimit.QuotaExceededError
	var resp *smithyhttp.ResponseError
	switch {
	// The SDK gives up retrying when its retry token bucket is empty, which
	// happens under sustained throttling.
	case strings.Contains(code, "Throttl"), errors.As(err, &quota):
		return Throttled
	// KMS emulators answer operations they do not implement with a plain 501.
	case errors.As(err, &resp) && resp.HTTPStatusCode() == http.StatusNotImplemented:
		return Invalid
	}
	return Transient
}
