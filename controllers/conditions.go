package controllers

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
)

// setCondition sets a condition stamped with the object's generation.
func setCondition(obj object, typ string, ok bool, reason, message string) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	conds := obj.GetConditions()
	meta.SetStatusCondition(&conds, metav1.Condition{
		Type: typ, Status: status, ObservedGeneration: obj.GetGeneration(), Reason: reason, Message: message,
	})
	obj.SetConditions(conds)
}

func findCondition(obj object, typ string) *metav1.Condition {
	return meta.FindStatusCondition(obj.GetConditions(), typ)
}

// setReady sets Ready; setSynced sets Synced.
func setReady(obj object, ok bool, reason, message string) {
	setCondition(obj, kmsv1alpha1.ConditionReady, ok, reason, message)
}

func setSynced(obj object, ok bool, reason, message string) {
	setCondition(obj, kmsv1alpha1.ConditionSynced, ok, reason, message)
}

// reportSuccess marks obj Ready and Synced.
func reportSuccess(obj object, message string) {
	setReady(obj, true, kmsv1alpha1.ReasonAvailable, message)
	setSynced(obj, true, kmsv1alpha1.ReasonReconcileSuccess, "the spec is applied")
}

// reportFailure puts f on Synced and emits an event when Synced changes, so
// a lasting problem does not add an event at every resync (unless f says to
// repeat it). Ready follows the one rule for every kind (see
// failure.passing): a passing fault leaves it as the last observation of
// this generation set it; anything else, or a generation not yet observed,
// makes it False with the same reason.
func (l *lifecycle[T]) reportFailure(obj T, f failure) {
	prev := findCondition(obj, kmsv1alpha1.ConditionSynced)
	if f.repeat || prev == nil || prev.Status != metav1.ConditionFalse || prev.Reason != f.reason || prev.Message != f.message {
		l.recorder.Eventf(obj, nil, f.eventType, f.reason, "Reconcile", "%s", f.message)
	}
	setSynced(obj, false, f.reason, f.message)
	ready := findCondition(obj, kmsv1alpha1.ConditionReady)
	if !f.passing || ready == nil || ready.ObservedGeneration != obj.GetGeneration() {
		setReady(obj, false, f.reason, f.message)
	}
}
