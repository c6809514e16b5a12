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
}

// diffs collects differences in the order they are added.
type diffs []difference

func (ds *diffs) add(aspect string, apply func(ctx context.Context, api kmsclient.API) error) {
	*ds = append(*ds, difference{aspect: aspect, apply: apply})
}

func (ds *diffs) addState(aspect string, apply func(ctx context.Context, api kmsclient.API) error) {
	*ds = append(*ds, difference{aspect: aspect, apply: apply, state: true})
}

// diff lists what differs, in the order the calls must go: a deletion is
// cancelled before anything else; a key is enabled before its rotation is
// changed and disabled after, since KMS refuses rotation changes on a
// disabled key.
func (r *KeyReconciler) diff(key *kmsv1alpha1.Key, obs *observed) []difference {
	var ds diffs
	if kmsclient.PendingDeletion(obs.key.State) {
		id := obs.key.ID
		ds.addState("deletion cancelled", func(ctx context.Context, api kmsclient.API) error { return api.CancelDeletion(ctx, id) })
		// KMS leaves a cancelled key Disabled; the rest is read and fixed by
		// the next reconcile.
		if key.Spec.WantsEnabled() {
			ds.addState("enabled", func(ctx context.Context, api kmsclient.API) error { return api.EnableKey(ctx, id) })
		}
		return ds
	}
	diffDescriptionAndPolicy(&ds, key, obs)
	diffTags(&ds, desiredTags(key, r.ClusterName), obs)
	// Only a settled key can be enabled or disabled; a passing state
	// (Creating, Updating, Unavailable) is waited out instead.
	settled := obs.key.State == kmsclient.StateEnabled || obs.key.State == kmsclient.StateDisabled
	stateDiffers := settled && (obs.key.State == kmsclient.StateEnabled) != key.Spec.WantsEnabled()
	if stateDiffers && key.Spec.WantsEnabled() {
		ds.addState("enabled", func(ctx context.Context, api kmsclient.API) error { return api.EnableKey(ctx, obs.key.ID) })
	}
	diffRotation(&ds, key, obs)
	r.diffOnDemandRotation(&ds, key, obs)
	if stateDiffers && !key.Spec.WantsEnabled() {
		ds.addState("disabled", func(ctx context.Context, api kmsclient.API) error { return api.DisableKey(ctx, obs.key.ID) })
	}
	return ds
}

func diffDescriptionAndPolicy(ds *diffs, key *kmsv1alpha1.Key, obs *observed) {
	id, spec := obs.key.ID, key.Spec
	if spec.Description != obs.key.Description {
		ds.add("description", func(ctx context.Context, api kmsclient.API) error {
			return api.UpdateDescription(ctx, id, spec.Description)
		})
	}
	if obs.policy != nil && !policyEqual(spec.Policy, *obs.policy, policy.PartitionOf(obs.key.ARN)) {
		ds.add("policy", func(ctx context.Context, api kmsclient.API) error {
			return api.PutKeyPolicy(ctx, id, spec.Policy, spec.BypassPolicyLockoutSafetyCheck)
		})
	}
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
		ds.add("rotation", func(ctx context.Context, api kmsclient.API) error { return api.EnableRotation(ctx, id, period) })
	case !on && obs.rotation.Enabled:
		ds.add("rotation", func(ctx context.Context, api kmsclient.API) error { return api.DisableRotation(ctx, id) })
	}
}

// apply makes the calls in order, stopping at the first error; it returns the
// aspects changed so far. An answer KMS may give from before the operator's
// own recent write, or about a principal IAM is still propagating, is a wait
// (consistency.go).
func (r *KeyReconciler) apply(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key, ds []difference) ([]string, error) {
	var applied []string
	for _, d := range ds {
		if err := d.apply(ctx, api); err != nil {
			return applied, awaitPrincipal(key, r.stale(key, err))
		}
		if d.state {
			r.memory.wrote(key.UID)
		}
		applied = append(applied, d.aspect)
	}
	return applied, nil
}

// policyEqual compares semantically, in the partition of the key (a bare
// account id is that partition's account root); a policy that does not parse
// differs, and the update then reports the parse error.
func policyEqual(want, got, partition string) bool {
	eq, err := policy.Equal(want, got, policy.InPartition(partition))
	return err == nil && eq
}
