package controllers

import (
	"context"
	"fmt"
	"slices"
	"time"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// A multi-Region Key owns its family's shared properties: rotation, and
// which region holds the primary key. Failover is declared in
// spec.primaryRegion, in this one object, so two objects can never both
// claim the primary; a ReplicaKey never changes it. After a failover the
// Key's own key is a replica: it keeps managing that key's description,
// policy, tags and state, and sends the rotation calls to the primary.

// aspectPrimaryRegion is what a failover changes.
const aspectPrimaryRegion = "primary region"

// failoverRecheck is when keys just failed over are read again: KMS makes
// them Updating for a few seconds.
const failoverRecheck = 5 * time.Second

// diffPrimaryRegion adds the failover spec.primaryRegion asks for:
// UpdatePrimaryRegion, sent to the current primary's region (this key's, or
// a replica's after an earlier failover). Keys in a passing state (Updating
// after a failover) are waited out; an omitted primaryRegion changes nothing.
func (r *KeyReconciler) diffPrimaryRegion(ds *diffs, key *kmsv1alpha1.Key, obs *observed) {
	want, k := key.Spec.PrimaryRegion, obs.key
	if want == "" || k.MultiRegionType == "" || k.PrimaryRegion == want ||
		(k.State != kmsclient.StateEnabled && k.State != kmsclient.StateDisabled) {
		return
	}
	id, from, replicas := k.ID, k.PrimaryRegion, k.ReplicaRegions
	*ds = append(*ds, difference{aspect: aspectPrimaryRegion, state: true, apply: func(ctx context.Context, _ kmsclient.API) error {
		if !slices.Contains(replicas, want) {
			return newSpecError(kmsv1alpha1.ReasonWaitingForReplicas, fmt.Sprintf(
				"spec.primaryRegion is %s, but KMS key %s has no replica there yet: declare a ReplicaKey in %s; the failover follows once it exists", want, id, want))
		}
		api, err := r.KMS.For(key.Status.Account, from)
		if err != nil {
			return err
		}
		return r.staleFailover(key, api.UpdatePrimaryRegion(ctx, id, want))
	}})
}

// staleFailover: right after this object's own write, KMS may still show
// the old primary, which then refuses UpdatePrimaryRegion as no primary
// (UnsupportedOperationException): a wait, not a verdict.
func (r *KeyReconciler) staleFailover(key *kmsv1alpha1.Key, err error) error {
	if kmsclient.ClassOf(err) == kmsclient.Invalid && time.Since(r.memory.lastWrite(key.UID)) < r.consistencyWindow() {
		return propagating("KMS may not show the operator's last change of the multi-Region key yet; retrying: %w", err)
	}
	return err
}

// keyAPIs are the APIs key's differences go to: a replica's shared
// properties go to its family's primary.
func (r *KeyReconciler) keyAPIs(account string, api kmsclient.API, k *kmsclient.Key) (keyAPIs, error) {
	apis := keyAPIs{regional: api}
	if k.MultiRegionType != kmsclient.MultiRegionReplica {
		return apis, nil
	}
	var err error
	apis.primary, err = r.KMS.For(account, k.PrimaryRegion)
	return apis, err
}
