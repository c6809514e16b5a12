package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
	"github.com/kmsoperator/kms-operator/internal/policy"
)

// A Key and a ReplicaKey each manage one KMS key in one region: the steps
// below are the ones they share (ownership tags, the aspects both declare,
// applying differences, and releasing the key), so that the two kinds
// cannot drift apart.

// owner is the object a KMS key's ownership tags name.
type owner struct {
	kind, namespace, name, uid, cluster string
}

func ownerOf(kind string, obj metav1.Object, cluster string) owner {
	return owner{kind: kind, namespace: obj.GetNamespace(), name: obj.GetName(), uid: string(obj.GetUID()), cluster: cluster}
}

// tags are the ownership tags that tie a key to its object. A Key's carry
// no kind (keys tagged before ReplicaKey existed are Keys').
func (o owner) tags() map[string]string {
	t := map[string]string{
		kmsv1alpha1.TagOwnerUID:     o.uid,
		kmsv1alpha1.TagOwnerNS:      o.namespace,
		kmsv1alpha1.TagOwnerName:    o.name,
		kmsv1alpha1.TagOwnerCluster: o.cluster,
	}
	if o.kind != kmsv1alpha1.KindKey {
		t[kmsv1alpha1.TagOwnerKind] = o.kind
	}
	return t
}

// otherOwner reports whether a key's ownership tags name an object other
// than o (another cluster, namespace, name or kind). An object re-created
// with the same kind, namespace and name (a new UID) is the same owner.
func (o owner) otherOwner(tags map[string]string) bool {
	ns, name := tags[kmsv1alpha1.TagOwnerNS], tags[kmsv1alpha1.TagOwnerName]
	if ns == "" && name == "" && tags[kmsv1alpha1.TagOwnerUID] == "" {
		return false
	}
	return tags[kmsv1alpha1.TagOwnerCluster] != o.cluster || ns != o.namespace || name != o.name || tagKind(tags) != o.kind
}

// tagKind is the kind of object a key's ownership tags name.
func tagKind(tags map[string]string) string {
	if k := tags[kmsv1alpha1.TagOwnerKind]; k != "" {
		return k
	}
	return kmsv1alpha1.KindKey
}

// keyAspects are what both kinds declare of their regional key.
type keyAspects struct {
	description string
	policy      string
	bypass      bool
}

// diffAspects adds the description and the policy (compared semantically,
// and only when declared) that differ.
func diffAspects(ds *diffs, want keyAspects, obs *observed) {
	id := obs.key.ID
	if want.description != obs.key.Description {
		ds.add("description", func(ctx context.Context, api kmsclient.API) error {
			return api.UpdateDescription(ctx, id, want.description)
		})
	}
	if obs.policy != nil && !policyEqual(want.policy, *obs.policy, policy.PartitionOf(obs.key.ARN)) {
		ds.add("policy", func(ctx context.Context, api kmsclient.API) error {
			return api.PutKeyPolicy(ctx, id, want.policy, want.bypass)
		})
	}
}

// stateDiffers reports whether a settled key (Enabled or Disabled) is not in
// the wanted state; a passing state (Creating, Updating, ...) is waited out.
func stateDiffers(obs *observed, wantEnabled bool) bool {
	settled := obs.key.State == kmsclient.StateEnabled || obs.key.State == kmsclient.StateDisabled
	return settled && (obs.key.State == kmsclient.StateEnabled) != wantEnabled
}

// cancelDeletion adds the cancellation of a key's scheduled deletion (an
// object re-created for a key on its way out takes it back) and reports
// whether it did: the rest is read and fixed by the next reconcile, since
// most reads fail on a key pending deletion. KMS leaves a cancelled key
// Disabled.
func cancelDeletion(ds *diffs, obs *observed, wantEnabled bool) bool {
	if !kmsclient.PendingDeletion(obs.key.State) {
		return false
	}
	id := obs.key.ID
	ds.addState("deletion cancelled", func(ctx context.Context, api kmsclient.API) error { return api.CancelDeletion(ctx, id) })
	if wantEnabled {
		addEnable(ds, id)
	}
	return true
}

func addEnable(ds *diffs, id string) {
	ds.addState("enabled", func(ctx context.Context, api kmsclient.API) error { return api.EnableKey(ctx, id) })
}

func addDisable(ds *diffs, id string) {
	ds.addState("disabled", func(ctx context.Context, api kmsclient.API) error { return api.DisableKey(ctx, id) })
}

// keyAPIs are the APIs a key's differences go to: its region's, and for a
// multi-Region replica its primary's, which holds the family's shared
// properties (rotation).
type keyAPIs struct {
	regional, primary kmsclient.API
}

// applyDiffs makes the calls in order, stopping at the first error, which
// onErr may turn into a wait (consistency.go); wrote is called after each
// call that changed the key's state. It returns the aspects changed.
func applyDiffs(ctx context.Context, apis keyAPIs, ds []difference, onErr func(error) error, wrote func()) ([]string, error) {
	var applied []string
	for _, d := range ds {
		api := apis.regional
		if d.shared && apis.primary != nil {
			api = apis.primary
		}
		if err := d.apply(ctx, api); err != nil {
			return applied, onErr(err)
		}
		if d.state {
			wrote()
		}
		applied = append(applied, d.aspect)
	}
	return applied, nil
}

// eventApplied emits one event for the changes made to a key: drift
// corrections when the spec had already been applied, plain updates
// otherwise.
func eventApplied(rec events.EventRecorder, obj object, observedGeneration int64, keyID string, applied []string) {
	if len(applied) == 0 {
		return
	}
	synced := findCondition(obj, kmsv1alpha1.ConditionSynced)
	if observedGeneration == obj.GetGeneration() && synced != nil && synced.Status == metav1.ConditionTrue {
		rec.Eventf(obj, nil, corev1.EventTypeWarning, "DriftCorrected", "Update",
			"KMS key %s had drifted from the spec in: %s; corrected", keyID, strings.Join(applied, ", "))
		return
	}
	rec.Eventf(obj, nil, corev1.EventTypeNormal, "Updated", "Update", "KMS key %s updated: %s", keyID, strings.Join(applied, ", "))
}

// reportDrift is the Observe policy's outcome: differences are reported,
// never fixed; an event names them when they change.
func reportDrift(rec events.EventRecorder, obj object, ds []difference, period time.Duration) ctrl.Result {
	setSynced(obj, true, kmsv1alpha1.ReasonObserveOnly, "managementPolicy is Observe: the key is read, never written")
	if len(ds) == 0 {
		setReady(obj, true, kmsv1alpha1.ReasonAvailable, "the KMS key matches the spec")
		return resync(period)
	}
	aspects := make([]string, len(ds))
	for i, d := range ds {
		aspects[i] = d.aspect
	}
	msg := "the KMS key differs from the spec in: " + strings.Join(aspects, ", ")
	if c := findCondition(obj, kmsv1alpha1.ConditionReady); c == nil || c.Message != msg {
		rec.Eventf(obj, nil, corev1.EventTypeWarning, kmsv1alpha1.ReasonDrifted, "Observe", "%s", msg)
	}
	setReady(obj, false, kmsv1alpha1.ReasonDrifted, msg)
	return resync(period)
}

// releaser lets go of one object's regional key as its deletion policy
// says: Retain removes the ownership tags, Delete schedules the deletion.
type releaser struct {
	Options
	recorder events.EventRecorder
	obj      object
	// stale turns an answer KMS may give from before the object's last
	// write into a wait (consistency.go).
	stale func(error) error
	// guard, if set, may hold the scheduling back (a Key's
	// spec.deletionProtection).
	guard func(context.Context) error
}

// retain removes the ownership tags and leaves the key as it is.
func (r releaser) retain(ctx context.Context, api kmsclient.API, id string) error {
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
		r.recorder.Eventf(r.obj, nil, corev1.EventTypeNormal, "Retained", "UntagKey", "KMS key %s retained; ownership tags removed", id)
	}
	return err
}

// schedule schedules the key's deletion with the window (k: the key if
// already described). A key already gone or on its way out counts as done;
// a "not found" right after the object's own write is not believed yet. A
// multi-Region primary is not scheduled while replicas that other objects
// manage are in use (waitForReplicas).
func (r releaser) schedule(ctx context.Context, api kmsclient.API, id string, k *kmsclient.Key, window int32) error {
	var err error
	if k == nil {
		k, err = api.DescribeKey(ctx, id)
	}
	if kmsclient.IsNotFound(err) {
		if err := r.stale(err); isPropagating(err) {
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
	if err := r.waitForReplicas(ctx, k); err != nil {
		return err
	}
	if r.guard != nil {
		if err := r.guard(ctx); err != nil {
			return err
		}
	}
	d, err := api.ScheduleDeletion(ctx, id, window)
	if err != nil {
		return r.stale(err)
	}
	// A multi-Region primary waits for its replicas; KMS sets the date only
	// once they are gone, so none is made up here.
	when := "once its replica keys are deleted (" + d.State + "; KMS has not set a date yet)"
	if d.Date != nil {
		when = "on " + d.Date.UTC().Format(time.RFC3339)
	}
	r.recorder.Eventf(r.obj, nil, corev1.EventTypeNormal, "DeletionScheduled", "ScheduleKeyDeletion", "KMS key %s scheduled for deletion %s", id, when)
	return nil
}

// waitForReplicas refuses to schedule the deletion of a multi-Region primary
// key while replicas managed by objects of this cluster are in use (not
// pending deletion): deleting the primary under a replica its object still
// declares would leave that object managing a family without a primary.
// Those objects are deleted first (a namespace or `kubectl delete -f` does
// it in any order: this object waits for them). Replicas nobody manages
// here are left to KMS, which keeps the primary PendingReplicaDeletion
// until they are gone.
func (r releaser) waitForReplicas(ctx context.Context, k *kmsclient.Key) error {
	if k.MultiRegionType != kmsclient.MultiRegionPrimary {
		return nil
	}
	var inUse []string
	for _, region := range k.ReplicaRegions {
		api, err := r.KMS.For(accountOf(r.obj), region)
		if err != nil {
			return err
		}
		replica, err := api.DescribeKey(ctx, k.ID)
		if kmsclient.IsNotFound(err) || (err == nil && kmsclient.PendingDeletion(replica.State)) {
			continue
		}
		if err != nil {
			return err
		}
		tags, err := api.ListTags(ctx, k.ID)
		if err != nil {
			return err
		}
		if tags[kmsv1alpha1.TagOwnerCluster] != r.ClusterName || tags[kmsv1alpha1.TagOwnerName] == "" {
			continue
		}
		who := "an object of another namespace"
		if tags[kmsv1alpha1.TagOwnerNS] == r.obj.GetNamespace() {
			who = tagKind(tags) + " " + tags[kmsv1alpha1.TagOwnerName]
		}
		inUse = append(inUse, fmt.Sprintf("%s (%s)", region, who))
	}
	if len(inUse) == 0 {
		return nil
	}
	slices.Sort(inUse)
	return newSpecError(kmsv1alpha1.ReasonWaitingForReplicas, fmt.Sprintf(
		"KMS key %s is the multi-Region primary of replicas still in use in %s: it is scheduled for deletion once their objects are deleted",
		k.ID, strings.Join(inUse, ", ")))
}
