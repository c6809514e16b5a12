package controllers

import (
	"fmt"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// recordReplica copies what KMS reported into status.
func recordReplica(rk *kmsv1alpha1.ReplicaKey, obs *observed) {
	k := obs.key
	rk.Status.KeyID, rk.Status.ARN, rk.Status.KeyState = k.ID, k.ARN, k.State
	rk.Status.PrimaryRegion = k.PrimaryRegion
	rk.Status.CreationDate = timeOrNil(&k.CreationDate)
	rk.Status.DeletionDate = timeOrNil(k.DeletionDate)
}

// recordReplicaApplied updates status to what the applied changes made of
// the replica, instead of spending a read to see it.
func recordReplicaApplied(rk *kmsv1alpha1.ReplicaKey, obs *observed) {
	if kmsclient.PendingDeletion(obs.key.State) {
		rk.Status.KeyState, rk.Status.DeletionDate = kmsclient.StateDisabled, nil
	}
	switch rk.Status.KeyState {
	case kmsclient.StateEnabled, kmsclient.StateDisabled:
		rk.Status.KeyState = kmsclient.StateDisabled
		if rk.Spec.WantsEnabled() {
			rk.Status.KeyState = kmsclient.StateEnabled
		}
	}
}

// report sets the conditions of a ReplicaKey whose spec was applied: Ready
// follows the replica's state in KMS.
func (r *ReplicaKeyReconciler) report(rk *kmsv1alpha1.ReplicaKey, obs *observed, applied []string) ctrl.Result {
	setSynced(rk, true, kmsv1alpha1.ReasonReconcileSuccess, syncedMessage(applied))
	switch {
	case kmsclient.PendingDeletion(obs.key.State):
		setReady(rk, false, kmsv1alpha1.ReasonUpdating, "the replica's scheduled deletion was cancelled; reading it again")
		return ctrl.Result{RequeueAfter: time.Second}
	case rk.Status.KeyState == kmsclient.StateEnabled || rk.Status.KeyState == kmsclient.StateDisabled:
		msg := "the replica matches the spec"
		if rk.Status.PrimaryRegion == rk.Spec.Region {
			msg = "the key matches the spec; it is the primary key of its multi-Region family"
		}
		setReady(rk, true, kmsv1alpha1.ReasonAvailable, msg)
		return resync(r.SyncPeriod)
	case rk.Status.KeyState == kmsclient.StateCreating || rk.Status.KeyState == kmsclient.StateUpdating:
		setReady(rk, false, kmsv1alpha1.ReasonUpdating, fmt.Sprintf("the replica is %s in KMS; looking again shortly", rk.Status.KeyState))
		return ctrl.Result{RequeueAfter: replicaCreatingRecheck}
	case rk.Status.KeyState == kmsclient.StatePendingImport:
		setReady(rk, false, kmsv1alpha1.ReasonInvalidKeyState,
			"the replica of a key with imported material waits for the same material, imported in its region (ImportKeyMaterial)")
		return resync(r.SyncPeriod)
	}
	setReady(rk, false, kmsv1alpha1.ReasonInvalidKeyState, fmt.Sprintf("the replica is %s in KMS; waiting for it to settle", rk.Status.KeyState))
	return ctrl.Result{RequeueAfter: transitionalRecheck}
}
