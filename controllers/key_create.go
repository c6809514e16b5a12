package controllers

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// A Key gets its KMS key in one of three ways: adopted (spec.keyID), found
// (a key this object owns but has not recorded) or created. CreateKey is not
// idempotent, so the create-started annotation guards it: it holds the time
// of the last CreateKey attempt, written before the attempt, and a key that
// attempt made is looked for by its ownership tags before another is made.

// create makes the key with everything CreateKey accepts, so only rotation and
// a disabled state need calls of their own.
func (r *KeyReconciler) create(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key) (*observed, error) {
	if err := r.markCreateAttempt(ctx, key); err != nil {
		return nil, err
	}
	tags := desiredTags(key, r.ClusterName)
	r.memory.attempting(key.UID)
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
		return nil, awaitPrincipal(key, err)
	}
	r.memory.setCreated(key.UID, k.ID)

	// A new key's aspects are known from the CreateKey input: no reads.
	obs := &observed{key: k, tags: tags, created: true}
	if key.Spec.Policy != "" {
		obs.policy = &key.Spec.Policy
	}
	if canRotate(k) {
		obs.rotation = &kmsclient.Rotation{}
	}
	r.memory.keepCreated(key.UID, key.Generation, obs)
	recordCreated(key, obs)
	now := *obs
	now.createdNow = true
	return &now, nil
}

// createdEarlier is the key this process created for this generation, whose
// creation a later reconcile finishes (finishCreationLater): known from the
// CreateKey input, with no read.
func (r *KeyReconciler) createdEarlier(key *kmsv1alpha1.Key) *observed {
	obs := r.memory.createdFor(key.UID, key.Generation)
	recordCreated(key, obs)
	return obs
}

// recordCreated records a key created for key's spec in its status.
func recordCreated(key *kmsv1alpha1.Key, obs *observed) {
	key.Status.KeyID, key.Status.ARN = obs.key.ID, obs.key.ARN
	// A new key's material is as fresh as an on-demand rotation would make it.
	if req := key.Spec.OnDemandRotationRequest(); req != "" {
		statusRotation(key).LastOnDemandRequest = req
	}
}

// markCreateAttempt makes the create-started annotation hold the time of the
// attempt about to be made, unless this process wrote it for this very
// attempt (prepare writes it with the finalizer, in one patch, before the
// first). Recovery waits for KMS to list what an attempt may have made from
// that time on (findOwnKey).
func (r *KeyReconciler) markCreateAttempt(ctx context.Context, key *kmsv1alpha1.Key) error {
	notes := r.memory.read(key.UID)
	value := key.Annotations[kmsv1alpha1.AnnotationCreateStarted]
	if value != "" && value == notes.annotation && !notes.attempted {
		return nil
	}
	base := key.DeepCopy()
	value = time.Now().UTC().Format(time.RFC3339)
	metav1.SetMetaDataAnnotation(&key.ObjectMeta, kmsv1alpha1.AnnotationCreateStarted, value)
	if err := r.client.Patch(ctx, key, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return err
	}
	r.memory.annotated(key.UID, value)
	return nil
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
	if err := r.checkOwnership(key, k.ID, tags); err != nil {
		return nil, nil, err
	}
	return k, tags, nil
}

// findOwnKey looks for a key this object owns but has not recorded: one an
// earlier attempt created without recording it (a crash, a lost answer), or
// one an earlier incarnation of the object created (restored from a backup
// without status, or re-applied from Git with a new UID). One tag:GetResources
// call finds the keys tagged with this cluster, namespace and name. Finding
// nothing is conclusive only once KMS has had its consistency window to list
// what the last CreateKey attempt may have made: until then it is a wait.
func (r *KeyReconciler) findOwnKey(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key) (*kmsclient.Key, error) {
	found, err := api.FindKeys(ctx, ownerSelector(key, r.ClusterName))
	if err != nil {
		return nil, err
	}
	k, err := r.pickOwnKey(ctx, api, key, found)
	if err != nil || k != nil {
		return k, err
	}
	if since, ok := r.lastCreateAttempt(key); ok {
		if until := since.Add(r.consistencyWindow()); time.Now().Before(until) {
			return nil, propagating("a CreateKey at %s may have made a key KMS does not list yet; looking for it until %s before creating another",
				since.Format(time.RFC3339), until.UTC().Format(time.RFC3339))
		}
	}
	return nil, nil
}

// pickOwnKey chooses among the keys found by their ownership tags: keys on
// their way out (pending deletion) belong to a deleted incarnation and are
// passed over; the key of this very object (its UID) comes first, then the
// newest. A key with another UID is rebound to this object.
func (r *KeyReconciler) pickOwnKey(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key, found []kmsclient.TaggedKey) (*kmsclient.Key, error) {
	var candidates []*kmsclient.Key
	sameUID := map[string]bool{}
	for _, f := range found {
		if tagKind(f.Tags) != kmsv1alpha1.KindKey {
			continue // a ReplicaKey's replica, named like this Key
		}
		k, err := api.DescribeKey(ctx, f.ID)
		if kmsclient.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !kmsclient.PendingDeletion(k.State) {
			candidates = append(candidates, k)
			sameUID[k.ID] = f.Tags[kmsv1alpha1.TagOwnerUID] == string(key.UID)
		}
	}
	if len(candidates) == 0 {
		return nil, nil
	}
	slices.SortStableFunc(candidates, func(a, b *kmsclient.Key) int {
		if sameUID[a.ID] != sameUID[b.ID] {
			if sameUID[a.ID] {
				return -1
			}
			return 1
		}
		return b.CreationDate.Compare(a.CreationDate)
	})
	k := candidates[0]
	if len(candidates) > 1 {
		r.event(key, corev1.EventTypeWarning, kmsv1alpha1.ReasonConflict, "Recover",
			"found %d KMS keys owned by this object; using %s, leaving the others as they are", len(candidates), k.ID)
	}
	if sameUID[k.ID] {
		r.event(key, corev1.EventTypeNormal, "Recovered", "Recover", "found KMS key %s created by an earlier attempt", k.ID)
	} else {
		r.event(key, corev1.EventTypeNormal, "Rebound", "Recover", "found KMS key %s of an earlier Key object of this name; using it", k.ID)
	}
	return k, nil
}

// lastCreateAttempt is the time of the last CreateKey attempt that may have
// made a key this object does not know of, from the create-started
// annotation; false when none can have (this process knows every attempt
// since the annotation was written was refused, or there was none).
func (r *KeyReconciler) lastCreateAttempt(key *kmsv1alpha1.Key) (time.Time, bool) {
	value, ok := key.Annotations[kmsv1alpha1.AnnotationCreateStarted]
	if !ok || r.memory.noKeyYet(key.UID) {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, value)
	if err != nil {
		// Not ours to read: wait as if it had just been written.
		return time.Now(), true
	}
	return t, true
}

// ownerSelector is the ownership tags every incarnation of key shares.
func ownerSelector(key *kmsv1alpha1.Key, cluster string) map[string]string {
	return map[string]string{
		kmsv1alpha1.TagOwnerCluster: cluster,
		kmsv1alpha1.TagOwnerNS:      key.Namespace,
		kmsv1alpha1.TagOwnerName:    key.Name,
	}
}

// checkOwnership refuses a key whose ownership tags name another object, or
// (without --allow-adoption) a key named by spec.keyID that this object has
// not claimed yet: an observed key switched to Manage is an adoption too. It
// runs on every observation, not only the first.
func (r *KeyReconciler) checkOwnership(key *kmsv1alpha1.Key, id string, tags map[string]string) error {
	if otherOwner(tags, key, r.ClusterName) {
		return newSpecError(kmsv1alpha1.ReasonAdoptionRefused, fmt.Sprintf(
			"KMS key %s is owned by another Key object; a key is managed by one object only", id))
	}
	claimed := tags[kmsv1alpha1.TagOwnerName] != ""
	if !claimed && key.Spec.KeyID != "" && !r.AllowAdoption {
		return newSpecError(kmsv1alpha1.ReasonAdoptionRefused, fmt.Sprintf(
			"KMS key %s named by spec.keyID is not claimed by this object; managing or observing it needs the operator flag --allow-adoption", id))
	}
	return nil
}
