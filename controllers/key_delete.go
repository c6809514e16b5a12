package controllers

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// reconcileDelete releases the key as spec.deletionPolicy says; an observed
// key is never touched.
func (r *KeyReconciler) reconcileDelete(ctx context.Context, key *kmsv1alpha1.Key) error {
	if !key.Spec.Observes() {
		api, err := r.KMS.For(key.Status.Account, keyRegion(key))
		if err != nil {
			return newSpecError(kmsv1alpha1.ReasonInvalidSpec, err.Error())
		}
		if err := r.releaseKey(ctx, api, key); err != nil {
			return err
		}
	}
	keyStates.set(key.UID, "")
	r.memory.forget(key.UID)
	return nil
}

// releaseKey schedules the key's deletion or, with Retain, removes the
// ownership tags. A key already gone or on its way out counts as done; a
// "not found" right after the operator's own write is not believed yet.
func (r *KeyReconciler) releaseKey(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key) error {
	id, k, err := r.keyToRelease(ctx, api, key)
	if err != nil || id == "" {
		return err
	}
	if key.Spec.DeletionPolicy == kmsv1alpha1.DeletionPolicyRetain {
		return r.retain(ctx, api, key, id)
	}
	if k == nil {
		k, err = api.DescribeKey(ctx, id)
	}
	if kmsclient.IsNotFound(err) {
		if err := r.stale(key, err); isPropagating(err) {
			return err
		}
		return nil
	}
	if err != nil {
		return err
	}
	if kmsclient.PendingDeletion(k.State) {
		return nil
	}
	if err := r.guardDeletion(ctx, api, key, id); err != nil {
		return err
	}
	d, err := api.ScheduleDeletion(ctx, id, key.Spec.EffectivePendingWindowInDays())
	if err != nil {
		return r.stale(key, err)
	}
	// A multi-Region primary waits for its replicas; KMS sets the date only
	// once they are gone, so none is made up here.
	when := "once its replica keys are deleted (" + d.State + "; KMS has not set a date yet)"
	if d.Date != nil {
		when = "on " + d.Date.UTC().Format(time.RFC3339)
	}
	r.event(key, corev1.EventTypeNormal, "DeletionScheduled", "ScheduleKeyDeletion", "KMS key %s scheduled for deletion %s", id, when)
	return nil
}

// guardDeletion holds the deletion of key id back while
// spec.deletionProtection says to: while objects of the namespace still
// reference the Key (the cache tells, at no KMS call), then while KMS saw
// the key used recently (a GetKeyLastUsage call).
func (r *KeyReconciler) guardDeletion(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key, id string) error {
	if key.Spec.WaitsForReferences() {
		if err := r.holdForReferences(ctx, key, id); err != nil {
			return err
		}
	}
	if days := key.Spec.UnusedForDays(); days > 0 {
		return r.holdForUse(ctx, api, key, id, days)
	}
	return nil
}

// keyToRelease is the key this object holds: recorded, or found by its
// ownership tags (and then already described) when an earlier attempt may
// have created one without recording it; "" for none.
func (r *KeyReconciler) keyToRelease(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key) (string, *kmsclient.Key, error) {
	if id := key.Status.KeyID; id != "" {
		return id, nil, nil
	}
	if id := r.memory.createdID(key.UID); id != "" {
		return id, nil, nil
	}
	if _, started := key.Annotations[kmsv1alpha1.AnnotationCreateStarted]; !started || key.Spec.KeyID != "" {
		return "", nil, nil
	}
	k, err := r.findOwnKey(ctx, api, key)
	if err != nil || k == nil {
		return "", nil, err
	}
	return k.ID, k, nil
}

// retain removes the ownership tags and leaves the key as it is.
func (r *KeyReconciler) retain(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key, id string) error {
	err := api.UntagKey(ctx, id, ownerTagKeys)
	switch {
	case kmsclient.IsNotFound(err):
		return nil
	case kmsclient.ClassOf(err) == kmsclient.InvalidState:
		// KMS refuses to untag a key pending deletion; it is going anyway.
		if k, derr := api.DescribeKey(ctx, id); derr == nil && kmsclient.PendingDeletion(k.State) {
			return nil
		}
	case err == nil:
		r.event(key, corev1.EventTypeNormal, "Retained", "UntagKey", "KMS key %s retained; ownership tags removed", id)
	}
	return err
}
