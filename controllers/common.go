// Package controllers holds the Key, Alias and Grant reconcilers.
package controllers

import (
	"errors"
	"math/rand/v2"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// Options configure every reconciler; main.go fills them from flags.
type Options struct {
	KMS                         kmsclient.Provider
	SyncPeriod                  time.Duration
	MaxConcurrentReconciles     int
	ClusterName                 string
	AllowAdoption               bool
	AllowUnmanagedKeyReferences bool
}

// The RBAC every reconciler needs besides its own kind. The reconcilers only
// ever patch (objects and their status) and set no ownerReferences, so the
// ClusterRole has no update verb and no finalizers subresource: least privilege
// that the e2e suite proves sufficient by running the operator with it.
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// SetupAll registers every controller with the manager.
func SetupAll(mgr ctrl.Manager, o Options) error {
	return errors.Join(
		(&KeyReconciler{Options: o}).SetupWithManager(mgr),
		(&AliasReconciler{Options: o}).SetupWithManager(mgr),
		(&GrantReconciler{Options: o}).SetupWithManager(mgr),
	)
}

// controllerOptions are shared by the reconcilers. Failures back off from one
// second to five minutes: KMS quotas are small and shared by the whole account,
// so the default 5 ms start would turn an outage into a retry storm.
func controllerOptions(o Options) controller.Options {
	n := o.MaxConcurrentReconciles
	if n < 1 {
		n = 1
	}
	return controller.Options{
		MaxConcurrentReconciles: n,
		RateLimiter:             workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](time.Second, 5*time.Minute),
	}
}

// resync is when a healthy object is next observed in KMS to catch drift. The
// jitter spreads the resyncs of objects created together, so a thousand keys
// do not all hit the read quotas in the same second.
func resync(period time.Duration) ctrl.Result {
	if period <= 0 {
		return ctrl.Result{}
	}
	jitter := time.Duration(rand.Int64N(int64(period)/5+1)) - period/10
	return ctrl.Result{RequeueAfter: period + jitter}
}

// setCondition sets a condition stamped with the object's generation.
func setCondition(conds *[]metav1.Condition, generation int64, typ string, ok bool, reason, message string) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: typ, Status: status, ObservedGeneration: generation, Reason: reason, Message: message,
	})
}

// failure is what a reconcile error means for status and for retries.
type failure struct {
	reason  string
	message string
	// retry: return the error so the workqueue backs off; otherwise the spec
	// (or KMS state) must change first and the object waits for its resync.
	retry bool
}

// classify maps an error to a condition reason and a retry decision. Invalid
// input and forbidden key states are not retried hot: they are reported once
// and looked at again on the resync period or when the spec changes.
func classify(err error) failure {
	msg := err.Error()
	var re *retryableError
	if errors.As(err, &re) {
		return failure{kmsv1alpha1.ReasonReconcileError, msg, true}
	}
	switch kmsclient.ClassOf(err) {
	case kmsclient.Throttled:
		return failure{kmsv1alpha1.ReasonThrottled, "KMS is throttling requests; retrying with backoff: " + msg, true}
	case kmsclient.Invalid, kmsclient.MalformedPolicy:
		return failure{kmsv1alpha1.ReasonInvalidSpec, "KMS rejected the spec; fix it and re-apply: " + msg, false}
	case kmsclient.InvalidState:
		return failure{kmsv1alpha1.ReasonInvalidKeyState, "the key's state forbids this change: " + msg, false}
	case kmsclient.NotFound:
		return failure{kmsv1alpha1.ReasonNotFound, msg, true}
	case kmsclient.AlreadyExists:
		return failure{kmsv1alpha1.ReasonConflict, msg, false}
	}
	var se *specError
	if errors.As(err, &se) {
		return failure{se.reason, se.Error(), false}
	}
	return failure{kmsv1alpha1.ReasonReconcileError, msg, true}
}

// specError is a problem a person must fix in the spec or in KMS (for
// example a refused adoption); it is not retried until something changes.
type specError struct {
	reason string
	msg    string
}

func (e *specError) Error() string { return e.msg }

// retryableError is retried with backoff whatever the class of the error it
// wraps (for example a malformed policy while IAM may still be propagating).
type retryableError struct{ error }

func (e *retryableError) Unwrap() error { return e.error }

func newSpecError(reason, msg string) error { return &specError{reason: reason, msg: msg} }

// eventType of a failure: retried faults are Normal noise, what needs a
// person is a Warning.
func eventType(f failure) string {
	if f.retry && f.reason != kmsv1alpha1.ReasonReconcileError {
		return corev1.EventTypeNormal
	}
	return corev1.EventTypeWarning
}
