package controllers

import (
	"context"
	"fmt"
	"time"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// A key's last cryptographic use, as KMS reports it (GetKeyLastUsage): shown
// in status.lastUsage when asked for, and the evidence of the deletion
// guard of spec.deletionProtection.unusedForDays. KMS documents what its
// answer means
// (https://docs.aws.amazon.com/kms/latest/APIReference/API_GetKeyLastUsage.html):
// a use since TrackingStartDate, or none; a key older than that date may
// have been used before it, which only CloudTrail knows.

// wantsLastUsage: each read is a GetKeyLastUsage call (5 a second by
// default for the whole account), so it is read only when the operator runs
// with --read-key-last-usage or the spec guards the deletion by it.
func (r *KeyReconciler) wantsLastUsage(key *kmsv1alpha1.Key) bool {
	return r.ReadKeyLastUsage || key.Spec.UnusedForDays() > 0
}

// observeLastUsage refreshes status.lastUsage at most once per sync period.
// A key made in this reconcile has not been used; one pending deletion has
// its deletion cancelled first: both are read at the next resync.
func (r *KeyReconciler) observeLastUsage(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key, obs *observed) error {
	if !r.wantsLastUsage(key) {
		key.Status.LastUsage = nil // it would only grow stale
		return nil
	}
	if obs.created || kmsclient.PendingDeletion(obs.key.State) || !r.memory.lastUsageDue(key.UID, r.SyncPeriod) {
		return nil
	}
	_, err := r.readLastUsage(ctx, api, key, obs.key.ID)
	return err
}

// readLastUsage reads the key's last usage into status.
func (r *KeyReconciler) readLastUsage(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key, id string) (*kmsclient.LastUsage, error) {
	u, err := api.GetKeyLastUsage(ctx, id)
	if err != nil {
		return nil, r.stale(key, err)
	}
	r.memory.lastUsageReadNow(key.UID)
	key.Status.LastUsage = &kmsv1alpha1.KeyLastUsage{
		Operation:         u.Operation,
		Time:              timeOrNil(u.Time),
		CloudTrailEventID: u.CloudTrailEventID,
		TrackingStartDate: timeOrNil(&u.TrackingStart),
	}
	return u, nil
}

// holdForUse reads the key's last usage, and holds its deletion while KMS
// saw it used within the last days, or cannot tell.
func (r *KeyReconciler) holdForUse(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key, id string, days int32) error {
	u, err := r.readLastUsage(ctx, api, key, id)
	if err != nil {
		return err
	}
	if msg := usageHold(u, id, days); msg != "" {
		return heldDeletion(kmsv1alpha1.ReasonDeletionProtected, msg)
	}
	return nil
}

// usageHold says why KMS's answer u does not show key id unused for days,
// or "" when it does. The days are counted on KMS's clock (u.At), the one
// that recorded the use: a skewed local clock cannot release a key early.
func usageHold(u *kmsclient.LastUsage, id string, days int32) string {
	period := time.Duration(days) * 24 * time.Hour
	remove := "; to delete it now, remove spec.deletionProtection.unusedForDays"
	switch {
	case u.Time != nil && u.At.Sub(*u.Time) < period:
		return fmt.Sprintf("KMS key %s was last used (%s) at %s, within the %d days of spec.deletionProtection.unusedForDays: its deletion is not scheduled. Unused from now on, it can be on %s",
			id, u.Operation, stamp(*u.Time), days, stamp(u.Time.Add(period))) + remove
	case u.Time != nil:
		return ""
	case u.TrackingStart.After(u.At):
		return fmt.Sprintf("KMS does not track the use of key %s yet (it starts on %s), so nothing shows it unused for the %d days of spec.deletionProtection.unusedForDays: its deletion is not scheduled",
			id, stamp(u.TrackingStart), days) + remove
	case !u.KeyCreation.Before(u.TrackingStart):
		return "" // tracked since its creation, and never used
	case u.At.Sub(u.TrackingStart) < period:
		return fmt.Sprintf("KMS has recorded no use of key %s since it began tracking it on %s, but the key is older and may have been used before (CloudTrail tells): "+
			"unused for the %d days of spec.deletionProtection.unusedForDays can be known on %s; its deletion is not scheduled",
			id, stamp(u.TrackingStart), days, stamp(u.TrackingStart.Add(period))) + remove
	}
	return ""
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
