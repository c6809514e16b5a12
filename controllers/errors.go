package controllers

import (
	"errors"

	corev1 "k8s.io/api/core/v1"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// failure is what a reconcile error means for status, events and retries.
type failure struct {
	reason  string
	message string
	// retry: return the error so the workqueue backs off. Otherwise a person
	// (or KMS) must change something first, and the object waits for its
	// resync or the next spec change: no hot retries.
	retry bool
	// passing: the error says nothing about the KMS resource itself (a
	// throttled or failed call), so Ready keeps what the last observation of
	// this generation said. kstatus tools then show an object that is fine
	// but briefly unreachable as still Ready; only Synced reports the fault.
	passing bool
	// eventType is Normal for expected, self-healing waits and Warning for
	// what may need a person.
	eventType string
	// repeat: an event at every occurrence, not only when Synced changes.
	repeat bool
}

// failureRule is one row of the table below.
type failureRule struct {
	reason    string
	retry     bool
	passing   bool
	eventType string
	prefix    string // put before the error's own message
}

// kmsFailures maps each class of KMS error to what it means. It is the one
// place where the operator decides how it reacts to an error, for every kind.
var kmsFailures = map[kmsclient.Class]failureRule{
	kmsclient.Throttled:       {kmsv1alpha1.ReasonThrottled, true, true, corev1.EventTypeNormal, "KMS is throttling requests; retrying with backoff: "},
	kmsclient.Transient:       {kmsv1alpha1.ReasonReconcileError, true, true, corev1.EventTypeWarning, ""},
	kmsclient.NotFound:        {kmsv1alpha1.ReasonNotFound, true, false, corev1.EventTypeNormal, ""},
	kmsclient.AlreadyExists:   {kmsv1alpha1.ReasonConflict, false, false, corev1.EventTypeWarning, ""},
	kmsclient.InvalidState:    {kmsv1alpha1.ReasonInvalidKeyState, false, false, corev1.EventTypeWarning, "the key's state forbids this change: "},
	kmsclient.Invalid:         {kmsv1alpha1.ReasonInvalidSpec, false, false, corev1.EventTypeWarning, "KMS rejected the spec; fix it and re-apply: "},
	kmsclient.MalformedPolicy: {kmsv1alpha1.ReasonInvalidSpec, false, false, corev1.EventTypeWarning, "KMS rejected the spec; fix it and re-apply: "},
	// Once its grace is over (consistency.go), a principal KMS still does not
	// know is a mistake in the spec.
	kmsclient.UnknownPrincipal: {kmsv1alpha1.ReasonInvalidSpec, false, false, corev1.EventTypeWarning, "KMS does not know a principal the spec names; fix it and re-apply: "},
	// Only an IAM or key policy change fixes it, which no spec change or
	// event tells the operator about: retried with backoff, never longer
	// apart than the sync period.
	kmsclient.AccessDenied: {kmsv1alpha1.ReasonAccessDenied, true, false, corev1.EventTypeWarning, "the operator's AWS identity may not do this; grant it the permission (see the README's IAM permissions): "},
}

// failureOf maps err to a failure. The operator's own errors come first: a
// spec error names its reason, a wait for KMS to catch up (consistency.go) is
// retried whatever it wraps; then the class of a KMS error; anything else
// (the API server, the network) is a passing fault retried with backoff.
func failureOf(err error) failure {
	msg := err.Error()
	var pe *propagatingError
	if errors.As(err, &pe) {
		return failure{reason: kmsv1alpha1.ReasonPropagating, message: msg, retry: true, passing: true, eventType: corev1.EventTypeNormal}
	}
	var ae *accountNotReadyError
	if errors.As(err, &ae) {
		return failure{reason: kmsv1alpha1.ReasonAccountNotReady, message: msg, retry: true, passing: true, eventType: corev1.EventTypeWarning}
	}
	var are *assumeRoleError
	if errors.As(err, &are) {
		if inner := failureOf(are.err); inner.passing {
			return inner // a throttled or failed call says nothing about the role
		}
		return failure{reason: kmsv1alpha1.ReasonAssumeRoleFailed, message: msg, retry: true, eventType: corev1.EventTypeWarning}
	}
	var he *heldError
	if errors.As(err, &he) {
		return failure{reason: he.reason, message: msg, eventType: corev1.EventTypeWarning, repeat: true}
	}
	var se *specError
	if errors.As(err, &se) {
		typ := corev1.EventTypeWarning
		switch se.reason {
		case kmsv1alpha1.ReasonWaitingForKey, kmsv1alpha1.ReasonWaitingForSecret, kmsv1alpha1.ReasonWaitingForReplicas:
			typ = corev1.EventTypeNormal // expected while objects applied together converge
		}
		return failure{reason: se.reason, message: se.msg, eventType: typ}
	}
	rule := kmsFailures[kmsclient.ClassOf(err)]
	return failure{reason: rule.reason, message: rule.prefix + msg, retry: rule.retry, passing: rule.passing, eventType: rule.eventType}
}

// specError is a problem a person must fix in the spec or in KMS (for
// example a refused adoption); it is not retried until something changes.
type specError struct {
	reason string
	msg    string
}

func (e *specError) Error() string { return e.msg }

func newSpecError(reason, msg string) error { return &specError{reason: reason, msg: msg} }

// heldError is a deletion the operator holds back on purpose
// (spec.deletionProtection). Someone is waiting for the object to go, so
// every reconcile that holds it says so in an event; it is looked at again
// at the resync, or when the spec or a referencing object changes.
type heldError struct {
	reason string
	msg    string
}

func (e *heldError) Error() string { return e.msg }

func heldDeletion(reason, msg string) error { return &heldError{reason: reason, msg: msg} }
