package controllers

import (
	"context"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// A replica has its primary's key id, in its own region: once the primary
// is known, one DescribeKey in the region says whether the replica exists.
// So a lost ReplicateKey answer needs no guard like CreateKey's: the
// replica is found, and its ownership tags (set by ReplicateKey) say
// whether it is this object's, another's, or nobody's (an adoption).

// observe finds the replica this object manages (recorded, found, adopted or
// created) and reads the aspects the spec declares.
func (r *ReplicaKeyReconciler) observe(ctx context.Context, api kmsclient.API, rk *kmsv1alpha1.ReplicaKey) (*observed, error) {
	if id := rk.Status.KeyID; id != "" {
		return r.observeRecorded(ctx, api, rk, id)
	}
	p, err := r.primary(ctx, rk)
	if err != nil {
		return nil, err
	}
	k, err := api.DescribeKey(ctx, p.id)
	if kmsclient.IsNotFound(err) {
		if err := r.stale(rk, err); isPropagating(err) {
			return nil, err
		}
		if rk.Spec.Observes() {
			return nil, newSpecError(kmsv1alpha1.ReasonNotFound, fmt.Sprintf("KMS key %s has no replica in %s to observe", p.id, rk.Spec.Region))
		}
		return r.create(ctx, rk, p)
	}
	if err != nil {
		return nil, err
	}
	obs, err := r.readAspects(ctx, api, rk, k, true)
	if err != nil {
		return nil, err
	}
	rk.Status.KeyID, rk.Status.ARN = k.ID, k.ARN
	reason, note := "Adopted", "adopted the replica of KMS key %s in %s"
	if obs.tags[kmsv1alpha1.TagOwnerUID] == string(rk.UID) {
		reason, note = "Recovered", "found the replica of KMS key %s in %s created by an earlier attempt"
	}
	r.recorder.Eventf(rk, nil, corev1.EventTypeNormal, reason, "Observe", note, k.ID, rk.Spec.Region)
	return obs, nil
}

// observeRecorded reads the replica whose id this object recorded; a
// replica gone from KMS is reported, not silently replaced.
func (r *ReplicaKeyReconciler) observeRecorded(ctx context.Context, api kmsclient.API, rk *kmsv1alpha1.ReplicaKey, id string) (*observed, error) {
	k, err := api.DescribeKey(ctx, id)
	if kmsclient.IsNotFound(err) {
		if err := r.stale(rk, err); isPropagating(err) {
			return nil, err
		}
		return nil, newSpecError(kmsv1alpha1.ReasonNotFound, fmt.Sprintf(
			"the replica %s in %s recorded in status no longer exists; delete and re-create the ReplicaKey to replicate the key again", id, rk.Spec.Region))
	}
	if err != nil {
		return nil, err
	}
	obs, err := r.readAspects(ctx, api, rk, k, false)
	if err != nil {
		return nil, r.stale(rk, err)
	}
	return obs, nil
}

// readAspects reads the tags, checks ownership (on every observation, as a
// Key does), and reads the policy when the spec declares one.
func (r *ReplicaKeyReconciler) readAspects(ctx context.Context, api kmsclient.API, rk *kmsv1alpha1.ReplicaKey, k *kmsclient.Key, found bool) (*observed, error) {
	tags, err := api.ListTags(ctx, k.ID)
	if err != nil {
		return nil, err
	}
	if err := r.checkOwnership(rk, k, tags, found); err != nil {
		return nil, err
	}
	obs := &observed{key: k, tags: tags}
	if rk.Spec.Policy != "" && !kmsclient.PendingDeletion(k.State) {
		p, err := api.GetKeyPolicy(ctx, k.ID)
		if err != nil {
			return nil, err
		}
		obs.policy = &p
	}
	return obs, nil
}

// checkOwnership refuses a replica whose ownership tags name another object,
// and (without --allow-adoption) one that exists without being claimed by
// this object: taking over, or observing, a key this object did not make is
// an adoption. found: the replica was not recorded in status.
func (r *ReplicaKeyReconciler) checkOwnership(rk *kmsv1alpha1.ReplicaKey, k *kmsclient.Key, tags map[string]string, found bool) error {
	if ownerOf(kmsv1alpha1.KindReplicaKey, rk, r.ClusterName).otherOwner(tags) {
		return newSpecError(kmsv1alpha1.ReasonAdoptionRefused, fmt.Sprintf(
			"the key %s in %s is owned by another object; a key is managed by one object only", k.ID, rk.Spec.Region))
	}
	claimed := tags[kmsv1alpha1.TagOwnerName] != ""
	if !claimed && (found || rk.Spec.Observes()) && !r.AllowAdoption {
		return newSpecError(kmsv1alpha1.ReasonAdoptionRefused, fmt.Sprintf(
			"a replica of KMS key %s already exists in %s, not claimed by this object; managing or observing it needs the operator flag --allow-adoption", k.ID, rk.Spec.Region))
	}
	return nil
}

// create replicates the primary into the ReplicaKey's region with
// everything ReplicateKey accepts, ownership tags included (tags are not
// replicated), sent to the region that holds the primary now.
func (r *ReplicaKeyReconciler) create(ctx context.Context, rk *kmsv1alpha1.ReplicaKey, p *primaryKey) (*observed, error) {
	api, err := r.KMS.For(rk.Status.Account, p.region)
	if err != nil {
		return nil, err
	}
	tags := replicaTags(rk, r.ClusterName)
	k, err := api.ReplicateKey(ctx, kmsclient.ReplicateKeyInput{
		KeyID: p.id, Region: rk.Spec.Region, Description: rk.Spec.Description, Policy: rk.Spec.Policy,
		BypassPolicyLockoutSafetyCheck: rk.Spec.BypassPolicyLockoutSafetyCheck, Tags: tags,
	})
	if kmsclient.ClassOf(err) == kmsclient.AlreadyExists {
		// KMS has it although DescribeKey did not show it: a lost answer,
		// or a replica KMS lists late. The next look finds it.
		r.memory.wrote(rk.UID)
		return nil, propagating("a replica of %s exists in %s that KMS does not show yet; looking again: %w", p.id, rk.Spec.Region, err)
	}
	if err != nil {
		return nil, awaitPrincipal(rk, staleAfterWrite(err, p.created, r.consistencyWindow()))
	}
	r.memory.wrote(rk.UID)
	r.recorder.Eventf(rk, nil, corev1.EventTypeNormal, "Created", "ReplicateKey", "replicated KMS key %s to %s", k.ID, rk.Spec.Region)
	rk.Status.KeyID, rk.Status.ARN = k.ID, k.ARN
	obs := &observed{key: k, tags: tags}
	if rk.Spec.Policy != "" {
		obs.policy = &rk.Spec.Policy
	}
	return obs, nil
}

// replicaTags is the spec's tags plus the ownership tags (with the kind, so
// that a Key of the same name never takes the replica for its own); an
// observed replica is never claimed.
func replicaTags(rk *kmsv1alpha1.ReplicaKey, cluster string) map[string]string {
	tags := maps.Clone(rk.Spec.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	if !rk.Spec.Observes() {
		maps.Copy(tags, ownerOf(kmsv1alpha1.KindReplicaKey, rk, cluster).tags())
	}
	return tags
}
