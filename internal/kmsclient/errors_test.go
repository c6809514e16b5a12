package kmsclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/google/go-cmp/cmp"
)

func httpError(status int, err error) error {
	return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: err}
}

// sdkWrapped wraps err the way the SDK returns it from an operation.
func sdkWrapped(err error) error {
	return &smithy.OperationError{ServiceID: "KMS", OperationName: "CreateKey", Err: err}
}

func TestClassify(t *testing.T) {
	type want struct {
		Class   Class
		Code    string
		Message string
	}
	cases := map[string]struct {
		reason string
		err    error
		want   want
	}{
		"NotFound": {
			reason: "A typed NotFoundException, as the SDK wraps it, is NotFound with KMS's code and message.",
			err:    sdkWrapped(httpError(400, &types.NotFoundException{Message: aws.String("Key 'x' does not exist")})),
			want:   want{NotFound, "NotFoundException", "Key 'x' does not exist"},
		},
		"AlreadyExists": {
			reason: "An existing alias is AlreadyExists.",
			err:    &types.AlreadyExistsException{Message: aws.String("exists")},
			want:   want{AlreadyExists, "AlreadyExistsException", "exists"},
		},
		"InvalidState": {
			reason: "A key in the wrong state is InvalidState.",
			err:    &types.KMSInvalidStateException{Message: aws.String("pending deletion")},
			want:   want{InvalidState, "KMSInvalidStateException", "pending deletion"},
		},
		"Disabled": {
			reason: "A disabled key is InvalidState.",
			err:    &types.DisabledException{Message: aws.String("disabled")},
			want:   want{InvalidState, "DisabledException", "disabled"},
		},
		"Throttling": {
			reason: "ThrottlingException is Throttled.",
			err:    &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"},
			want:   want{Throttled, "ThrottlingException", "Rate exceeded"},
		},
		"OtherThrottlingCode": {
			reason: "Any code about throttling is Throttled.",
			err:    &smithy.GenericAPIError{Code: "RequestThrottledException"},
			want:   want{Throttled, "RequestThrottledException", ""},
		},
		"ThrottledAfterRetries": {
			reason: "Throttling still failing after the SDK's retries is Throttled.",
			err:    sdkWrapped(&retry.MaxAttemptsError{Attempt: 3, Err: &smithy.GenericAPIError{Code: "ThrottlingException"}}),
			want:   want{Throttled, "ThrottlingException", ""},
		},
		"RetryQuotaExceeded": {
			reason: "The SDK's empty retry token bucket means sustained throttling or faults: back off as Throttled.",
			err:    sdkWrapped(errors.Join(&types.KMSInternalException{Message: aws.String("internal")}, fmt.Errorf("failed to get rate limit token, %w", ratelimit.QuotaExceededError{Available: 0, Requested: 5}))),
			want:   want{Throttled, "KMSInternalException", "internal"},
		},
		"MalformedPolicy": {
			reason: "A rejected policy is MalformedPolicy, retried a few times for IAM propagation.",
			err:    &types.MalformedPolicyDocumentException{Message: aws.String("principal")},
			want:   want{MalformedPolicy, "MalformedPolicyDocumentException", "principal"},
		},
		"Validation": {
			reason: "Input KMS refuses is Invalid.",
			err:    &smithy.GenericAPIError{Code: "ValidationException", Message: "bad"},
			want:   want{Invalid, "ValidationException", "bad"},
		},
		"Unsupported": {
			reason: "Rotation of an asymmetric key is Invalid.",
			err:    &types.UnsupportedOperationException{Message: aws.String("no")},
			want:   want{Invalid, "UnsupportedOperationException", "no"},
		},
		"Tag": {
			reason: "A reserved tag is Invalid.",
			err:    &types.TagException{Message: aws.String("aws:")},
			want:   want{Invalid, "TagException", "aws:"},
		},
		"LimitExceeded": {
			reason: "An account limit is Invalid until raised.",
			err:    &types.LimitExceededException{Message: aws.String("limit")},
			want:   want{Invalid, "LimitExceededException", "limit"},
		},
		"InvalidAliasName": {
			reason: "A reserved alias name is Invalid.",
			err:    &types.InvalidAliasNameException{Message: aws.String("alias/aws/")},
			want:   want{Invalid, "InvalidAliasNameException", "alias/aws/"},
		},
		"AccessDenied": {
			reason: "AccessDenied is its own class: an IAM change fixes it, never the spec.",
			err:    httpError(400, &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized"}),
			want:   want{AccessDenied, "AccessDeniedException", "not authorized"},
		},
		"InvalidArn": {
			reason: "InvalidArnException names a principal KMS does not know (yet): UnknownPrincipal.",
			err:    &types.InvalidArnException{Message: aws.String("ARN is not valid")},
			want:   want{UnknownPrincipal, "InvalidArnException", "ARN is not valid"},
		},
		"Internal": {
			reason: "KMSInternalException is Transient.",
			err:    &types.KMSInternalException{Message: aws.String("oops")},
			want:   want{Transient, "KMSInternalException", "oops"},
		},
		"DependencyTimeout": {
			reason: "DependencyTimeoutException is Transient.",
			err:    &types.DependencyTimeoutException{Message: aws.String("slow")},
			want:   want{Transient, "DependencyTimeoutException", "slow"},
		},
		"ServerError": {
			reason: "A 5xx without a KMS code is Transient.",
			err:    sdkWrapped(httpError(503, errors.New("service unavailable"))),
			want:   want{Transient, "", "operation error KMS: CreateKey, http response error StatusCode: 503, service unavailable"},
		},
		"NotImplemented": {
			reason: "A 501 (an emulator without the operation) never succeeds on retry: Invalid.",
			err:    sdkWrapped(httpError(501, &smithy.GenericAPIError{Code: "UnknownError", Message: "not implemented"})),
			want:   want{Invalid, "UnknownError", "not implemented"},
		},
		"DeadlineExceeded": {
			reason: "A timeout is Transient.",
			err:    sdkWrapped(&smithyhttp.RequestSendError{Err: context.DeadlineExceeded}),
			want:   want{Transient, "", "operation error KMS: CreateKey, request send failed, context deadline exceeded"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := classify("CreateKey", tc.err)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("classify returned %T, want *Error", err)
			}
			got := want{e.Class, e.Code, e.Message}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\n-want +got:\n%s", tc.reason, diff)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("classify must keep the SDK error for errors.Is/As")
			}
		})
	}
	if err := classify("CreateKey", nil); err != nil {
		t.Errorf("classify(nil) = %v, want nil", err)
	}
}
