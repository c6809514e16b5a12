package controllers

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
	"github.com/kmsoperator/kms-operator/internal/policy"
)

// A Key gets its KMS key in one of three ways: created, adopted (spec.keyID)
// or recovered (an earlier attempt created it but could not record it). The
// create-started guard ties them together: the annotation is written before
// the first CreateKey (see prepare), so a reconcile that finds it without a
// key id in status looks for the key by its tags before creating another.

// create makes the key with everything CreateKey accepts, so only rotation and
// a disabled state need calls of their own.
func (r *KeyReconciler) create(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key) (*observed, error) {
	if key.Spec.Policy != "" {
		if err := policy.Validate(key.Spec.Policy); err != nil {
			return nil, newSpecError(kmsv1alpha1.ReasonInvalidSpec, "spec.policy: "+err.Error())
		}
	}
	tags := desiredTags(key, r.ClusterName)
	k, err := api.CreateKey(ctx, kmsclient.CreateKeyInput{
		Description:                    key.Spec.Description,
		KeySpec:                        string(key.Spec.EffectiveKeySpec()),
		KeyUsage:                       string(key.Spec.EffectiveKeyUsage()),
		Origin:                         string(key.Spec.EffectiveOrigin()),
		MultiRegion:                    key.Spec.MultiRegion,
		Policy:                         key.Spec.Policy,
		BypassPolicyLockoutSafetyCheck: key.Spec.BypassPolicyLockoutSafetyCheck,
		Tags:                           tags,
	})
	if err != nil {
		// CreateKey is never retried (see kmsclient), so err is the one
		// attempt's: a classified answer means KMS refused the request; only
		// a transient fault (5xx, timeout, lost connection) may hide a new key.
		r.memory.setNoKeyYet(key.UID, kmsclient.ClassOf(err) != kmsclient.Transient)
		return nil, r.policyGrace(key, err)
	}
	r.memory.setCreated(key.UID, k.ID)
	r.event(key, corev1.EventTypeNormal, "Created", "CreateKey", "created KMS key %s", k.ID)

	key.Status.KeyID, key.Status.ARN = k.ID, k.ARN
	// A new key's aspects are known from the CreateKey input: no reads.
	obs := &observed{key: k, tags: tags}
	if key.Spec.Policy != "" {
		obs.policy = &key.Spec.Policy
	}
	if canRotate(k) {
		obs.rotation = &kmsclient.Rotation{}
	}
	// A new key's material is as fresh as an on-demand rotation would make it.
	if req := key.Spec.OnDemandRotationRequest(); req != "" {
		statusRotation(key).LastOnDemandRequest = req
	}
	return obs, nil
}

// adopt checks that spec.keyID may be taken over by this object.
func (r *KeyReconciler) adopt(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key) (*kmsclient.Key, map[string]string, error) {
	if !r.AllowAdoption {
		return nil, nil, newSpecError(kmsv1alpha1.ReasonAdoptionRefused,
			"spec.keyID names an existing key, but adoption is off: start the operator with --allow-adoption")
	}
	k, err := api.DescribeKey(ctx, key.Spec.KeyID)
	if err != nil {
		return nil, nil, err
	}
	tags, err := api.ListTags(ctx, k.ID)
	if err != nil {
		return nil, nil, err
	}
	if owner, ok := otherOwner(tags, key, r.ClusterName); ok {
		return nil, nil, newSpecError(kmsv1alpha1.ReasonAdoptionRefused, fmt.Sprintf(
			"KMS key %s belongs to %s; a key is managed by one object only", k.ID, owner))
	}
	return k, tags, nil
}

// mayHaveCreated reports whether an earlier attempt may have created a key
// for key without recording it: the create-started annotation is there, no
// key id is known, and this process cannot rule a CreateKey out.
func (r *KeyReconciler) mayHaveCreated(key *kmsv1alpha1.Key) bool {
	_, started := key.Annotations[kmsv1alpha1.AnnotationCreateStarted]
	return started && key.Status.KeyID == "" && r.memory.createdID(key.UID) == "" && !r.memory.noKeyYet(key.UID)
}

// recover looks for a key an earlier attempt created before it could record
// the id. Listing every key's tags is costly, so it only runs when
// mayHaveCreated says a CreateKey may have happened.
func (r *KeyReconciler) recover(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key) (*kmsclient.Key, error) {
	ids, err := api.FindKeysByTag(ctx, kmsv1alpha1.TagOwnerUID, string(key.UID))
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	if len(ids) > 1 {
		r.event(key, corev1.EventTypeWarning, kmsv1alpha1.ReasonConflict, "Recover",
			"found %d KMS keys tagged with this object's UID (%s); using %s", len(ids), strings.Join(ids, ", "), ids[0])
	}
	k, err := api.DescribeKey(ctx, ids[0])
	if err != nil {
		return nil, err
	}
	r.event(key, corev1.EventTypeNormal, "Recovered", "Recover", "found KMS key %s created by an earlier attempt", k.ID)
	return k, nil
}
