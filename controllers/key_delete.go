package controllers

import (
	"context"

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
// ownership tags (managed_key.go: the steps a ReplicaKey shares).
func (r *KeyReconciler) releaseKey(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key) error {
	id, k, err := r.keyToRelease(ctx, api, key)
	if err != nil || id == "" {
		return err
	}
	rel := releaser{Options: r.Options, recorder: r.recorder, obj: key, stale: func(err error) error { return r.stale(key, err) },
		guard: func(ctx context.Context) error { return r.guardDeletion(ctx, api, key, id) }}
	if key.Spec.DeletionPolicy == kmsv1alpha1.DeletionPolicyRetain {
		return rel.retain(ctx, api, id)
	}
	return rel.schedule(ctx, api, id, k, key.Spec.EffectivePendingWindowInDays())
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
