package controllers

import (
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// Real KMS is eventually consistent (the KMS developer guide, "AWS KMS
// eventual consistency"): a change can take seconds, sometimes minutes, to
// show everywhere. A "not found" or a refusal right after a write, or a
// principal KMS does not know yet, is no verdict. This file holds the rules
// every kind follows for such answers: wait and look again, with backoff,
// for a bounded time, then believe the answer.

// DefaultConsistencyWindow is how long after its own write the operator
// treats KMS's answers as possibly stale, unless --kms-consistency-window
// says otherwise. KMS documents propagation as "usually less than a few
// seconds, in some cases several minutes" and grants as "usually less than
// five minutes".
const DefaultConsistencyWindow = 5 * time.Minute

// principalGrace is how long a principal KMS does not know (a policy it
// calls malformed, a grantee it calls an invalid ARN) is waited for before
// the spec is called invalid: IAM takes a while to propagate a new role.
const principalGrace = 2 * time.Minute

// propagatingError is a wait for KMS to catch up: retried with backoff,
// reported with the reason Propagating.
type propagatingError struct{ error }

func (e *propagatingError) Unwrap() error { return e.error }

func propagating(format string, args ...any) error {
	return &propagatingError{fmt.Errorf(format, args...)}
}

// consistencyWindow is the configured window, or the default.
func (o Options) consistencyWindow() time.Duration {
	if o.ConsistencyWindow > 0 {
		return o.ConsistencyWindow
	}
	return DefaultConsistencyWindow
}

// awaitPrincipal turns KMS's refusal of a principal it does not know into a
// wait while IAM may still be propagating it, and lets it through as an
// invalid spec once obj has waited principalGrace for this generation.
func awaitPrincipal(obj object, err error) error {
	class := kmsclient.ClassOf(err)
	if class != kmsclient.MalformedPolicy && class != kmsclient.UnknownPrincipal {
		return err
	}
	if waitedSince(obj).Add(principalGrace).After(time.Now()) {
		return &propagatingError{fmt.Errorf("KMS does not accept a principal yet (IAM may still be propagating a new role or user); retrying for up to %s: %w", principalGrace, err)}
	}
	return err
}

// waitedSince is when obj began waiting for KMS to catch up in this
// generation: when its Synced condition turned to Propagating, or now.
// Kept in the object's status, the wait survives a restart of the operator.
func waitedSince(obj object) time.Time {
	c := findCondition(obj, kmsv1alpha1.ConditionSynced)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != kmsv1alpha1.ReasonPropagating || c.ObservedGeneration != obj.GetGeneration() {
		return time.Now()
	}
	return c.LastTransitionTime.Time
}

// staleAfterWrite turns a NotFound or InvalidState answer about a key the
// operator wrote less than the consistency window ago into a wait: KMS may
// not show its own change yet.
func staleAfterWrite(err error, lastWrite time.Time, window time.Duration) error {
	class := kmsclient.ClassOf(err)
	if (class != kmsclient.NotFound && class != kmsclient.InvalidState) || time.Since(lastWrite) >= window {
		return err
	}
	var pe *propagatingError
	if errors.As(err, &pe) {
		return err
	}
	return &propagatingError{fmt.Errorf("KMS may not show the operator's change of %s ago yet; retrying: %w", time.Since(lastWrite).Round(time.Second), err)}
}
