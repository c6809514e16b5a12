package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// observed is a key as KMS has it: only the aspects the spec manages are read.
type observed struct {
	key      *kmsclient.Key
	policy   *string             // nil when the spec declares no policy
	rotation *kmsclient.Rotation // nil when the key cannot rotate
	tags     map[string]string
	// created: the key was made by this process and its creation is not
	// finished; it is known from the CreateKey input, nothing about it is
	// read. createdNow: made in this very reconcile.
	created    bool
	createdNow bool
}

// observe finds the key this object manages (adopting, finding or creating
// it when none is recorded yet) and reads the aspects the spec declares.
func (r *KeyReconciler) observe(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key) (*observed, error) {
	id := key.Status.KeyID
	if id == "" {
		id = r.memory.createdID(key.UID)
	}
	switch {
	case key.Status.KeyID == "" && r.memory.createdFor(key.UID, key.Generation) != nil:
		return r.createdEarlier(key), nil
	case id != "":
		return r.observeRecorded(ctx, api, key, id)
	case key.Spec.KeyID != "":
		k, tags, err := r.adopt(ctx, api, key)
		if err != nil {
			return nil, err
		}
		key.Status.KeyID, key.Status.ARN = k.ID, k.ARN
		obs, err := r.readAspectsWithTags(ctx, api, key, k, tags)
		if err == nil {
			r.event(key, corev1.EventTypeNormal, "Adopted", "Adopt", "adopted KMS key %s", k.ID)
		}
		return obs, err
	}
	k, err := r.findOwnKey(ctx, api, key)
	if err != nil {
		return nil, err
	}
	if k != nil {
		key.Status.KeyID, key.Status.ARN = k.ID, k.ARN
		return r.readAspects(ctx, api, key, k)
	}
	return r.create(ctx, api, key)
}

// observeRecorded reads the key whose id this object recorded, and checks on
// every observation that the key is still this object's to manage.
func (r *KeyReconciler) observeRecorded(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key, id string) (*observed, error) {
	if s := key.Spec.KeyID; s != "" && s != id && s != key.Status.ARN {
		return nil, newSpecError(kmsv1alpha1.ReasonInvalidSpec, fmt.Sprintf(
			"spec.keyID is %s but this object already manages KMS key %s; one object manages one key", s, id))
	}
	k, err := api.DescribeKey(ctx, id)
	if kmsclient.IsNotFound(err) {
		if err := r.stale(key, err); isPropagating(err) {
			return nil, err
		}
		return nil, newSpecError(kmsv1alpha1.ReasonNotFound, fmt.Sprintf(
			"KMS key %s recorded in status no longer exists; delete and re-create the Key object to create a new key", id))
	}
	if err != nil {
		return nil, err
	}
	obs, err := r.readAspects(ctx, api, key, k)
	if err != nil {
		return nil, r.stale(key, err)
	}
	if err := r.checkOwnership(key, k.ID, obs.tags); err != nil {
		return nil, err
	}
	if err := r.awaitTags(key, k, obs.tags); err != nil {
		return nil, err
	}
	return obs, nil
}

// stale turns an answer KMS may give from before this object's last write of
// its key into a wait (consistency.go).
func (r *KeyReconciler) stale(key *kmsv1alpha1.Key, err error) error {
	return staleAfterWrite(err, r.lastWrite(key), r.consistencyWindow())
}

// lastWrite is when this object last changed its key: this process's own
// record, or the key's creation (which survives a restart in status).
func (r *KeyReconciler) lastWrite(key *kmsv1alpha1.Key) time.Time {
	last := r.memory.lastWrite(key.UID)
	if c := key.Status.CreationDate; c != nil && c.After(last) {
		last = c.Time
	}
	return last
}

func isPropagating(err error) bool {
	var pe *propagatingError
	return errors.As(err, &pe)
}

func (r *KeyReconciler) readAspects(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key, k *kmsclient.Key) (*observed, error) {
	tags, err := api.ListTags(ctx, k.ID)
	if err != nil {
		return nil, err
	}
	return r.readAspectsWithTags(ctx, api, key, k, tags)
}

// readAspectsWithTags reads the policy only when the spec declares one (an
// omitted policy is KMS's business) and rotation only for keys that rotate.
func (r *KeyReconciler) readAspectsWithTags(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key, k *kmsclient.Key, tags map[string]string) (*observed, error) {
	obs := &observed{key: k, tags: tags}
	if kmsclient.PendingDeletion(k.State) {
		// Most reads fail on a key pending deletion; the diff cancels the
		// deletion first and the next reconcile reads the rest.
		return obs, nil
	}
	if key.Spec.Policy != "" {
		p, err := api.GetKeyPolicy(ctx, k.ID)
		if err != nil {
			return nil, err
		}
		obs.policy = &p
	}
	switch {
	case canRotate(k):
		rot, err := api.GetRotation(ctx, k.ID)
		if err != nil {
			return nil, err
		}
		obs.rotation = rot
	case canRotateOnDemand(k):
		// Nothing to read: no automatic rotation, and an on-demand one is
		// found in ListKeyRotations.
		obs.rotation = &kmsclient.Rotation{}
	}
	return obs, nil
}

// canRotate: KMS rotates automatically only symmetric keys with KMS-made
// material, and answers the rotation settings of other keys with
// UnsupportedOperationException.
func canRotate(k *kmsclient.Key) bool {
	return k.KeySpec == string(kmsv1alpha1.KeySpecSymmetricDefault) &&
		k.Origin == string(kmsv1alpha1.OriginAWSKMS) && k.State != kmsclient.StatePendingImport
}

// canRotateOnDemand: since 2025 KMS also rotates symmetric keys with
// imported material on demand, to new material imported first
// (RotateKeyOnDemand API reference).
func canRotateOnDemand(k *kmsclient.Key) bool {
	return canRotate(k) || (k.KeySpec == string(kmsv1alpha1.KeySpecSymmetricDefault) &&
		k.Origin == string(kmsv1alpha1.OriginExternal) && k.State != kmsclient.StatePendingImport)
}

// checkImmutable refuses a spec whose creation-time fields differ from the key:
// it can only happen with an adopted key, and no call can fix it.
func checkImmutable(key *kmsv1alpha1.Key, k *kmsclient.Key) error {
	var bad []string
	check := func(field, want, got string) {
		if got != "" && want != got {
			bad = append(bad, fmt.Sprintf("%s is %s in the spec but %s in KMS", field, want, got))
		}
	}
	check("spec.keySpec", string(key.Spec.EffectiveKeySpec()), k.KeySpec)
	check("spec.keyUsage", string(key.Spec.EffectiveKeyUsage()), k.KeyUsage)
	check("spec.origin", string(key.Spec.EffectiveOrigin()), k.Origin)
	if len(bad) > 0 {
		return newSpecError(kmsv1alpha1.ReasonInvalidSpec, strings.Join(bad, "; ")+": KMS fixes these at creation, so change the spec")
	}
	return nil
}
