package controllers

import (
	"context"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
	"github.com/kmsoperator/kms-operator/internal/policy"
)

// difference is one aspect of the key that differs from the spec, and the one
// KMS call that fixes it.
type difference struct {
	aspect string
	apply  func(ctx context.Context, api kmsclient.API) error
	// state: the call changes the key's state, which KMS may show late.
	state bool
	// shared: the call changes a property a multi-Region family shares
	// (rotation), which only its primary key takes (keyAPIs).
	shared bool
}

// diffs collects differences in the order they are added.
type diffs []difference

func (ds *diffs) add(aspect string, apply func(ctx context.Context, api kmsclient.API) error) {
	*ds = append(*ds, difference{aspect: aspect, apply: apply})
}

func (ds *diffs) addState(aspect string, apply func(ctx context.Context, api kmsclient.API) error) {
	*ds = append(*ds, difference{aspect: aspect, apply: apply, state: true})
}

func (ds *diffs) addShared(aspect string, apply func(ctx context.Context, api kmsclient.API) error) {
	*ds = append(*ds, difference{aspect: aspect, apply: apply, shared: true})
}

// diff lists what differs, in the order the calls must go: a deletion is
// cancelled before anything else; a key is enabled before its rotation is
// changed and disabled after, since KMS refuses rotation changes on a
// disabled key; a failover comes last, as it leaves the keys Updating.
func (r *KeyReconciler) diff(key *kmsv1alpha1.Key, obs *observed) []difference {
	var ds diffs
	if cancelDeletion(&ds, obs, key.Spec.WantsEnabled()) {
		return ds
	}
	diffAspects(&ds, keyAspects{key.Spec.Description, key.Spec.Policy, key.Spec.BypassPolicyLockoutSafetyCheck}, obs)
	diffTags(&ds, desiredTags(key, r.ClusterName), obs)
	differs := stateDiffers(obs, key.Spec.WantsEnabled())
	if differs && key.Spec.WantsEnabled() {
		addEnable(&ds, obs.key.ID)
	}
	diffRotation(&ds, key, obs)
	r.diffOnDemandRotation(&ds, key, obs)
	if differs && !key.Spec.WantsEnabled() {
		addDisable(&ds, obs.key.ID)
	}
	r.diffPrimaryRegion(&ds, key, obs)
	return ds
}

func diffTags(ds *diffs, want map[string]string, obs *observed) {
	id := obs.key.ID
	if set := changedTags(want, obs.tags); len(set) > 0 {
		ds.add("tags", func(ctx context.Context, api kmsclient.API) error { return api.TagKey(ctx, id, set) })
	}
	if del := extraTags(want, obs.tags); len(del) > 0 {
		ds.add("tags removed", func(ctx context.Context, api kmsclient.API) error { return api.UntagKey(ctx, id, del) })
	}
}

func diffRotation(ds *diffs, key *kmsv1alpha1.Key, obs *observed) {
	if obs.rotation == nil {
		return
	}
	id := obs.key.ID
	on, period := key.Spec.EffectiveRotation()
	switch {
	case on && (!obs.rotation.Enabled || obs.rotation.PeriodInDays != period):
		ds.addShared("rotation", func(ctx context.Context, api kmsclient.API) error { return api.EnableRotation(ctx, id, period) })
	case !on && obs.rotation.Enabled:
		ds.addShared("rotation", func(ctx context.Context, api kmsclient.API) error { return api.DisableRotation(ctx, id) })
	}
}

// apply makes the calls in order, stopping at the first error; it returns the
// aspects changed so far. An answer KMS may give from before the operator's
// own recent write, or about a principal IAM is still propagating, is a wait
// (consistency.go).
func (r *KeyReconciler) apply(ctx context.Context, apis keyAPIs, key *kmsv1alpha1.Key, ds []difference) ([]string, error) {
	return applyDiffs(ctx, apis, ds,
		func(err error) error { return awaitPrincipal(key, r.stale(key, err)) },
		func() { r.memory.wrote(key.UID) })
}

// policyEqual compares semantically, in the partition of the key (a bare
// account id is that partition's account root); a policy that does not parse
// differs, and the update then reports the parse error.
func policyEqual(want, got, partition string) bool {
	eq, err := policy.Equal(want, got, policy.InPartition(partition))
	return err == nil && eq
}
