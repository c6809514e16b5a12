package controllers

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// transitionalRecheck is when a key in a passing state (Creating, Updating,
// Unavailable, ...) is looked at again.
const transitionalRecheck = 30 * time.Second

// recordObservation copies what KMS reported into status.
func recordObservation(key *kmsv1alpha1.Key, obs *observed) {
	k := obs.key
	key.Status.KeyID, key.Status.ARN, key.Status.KeyState = k.ID, k.ARN, k.State
	key.Status.CreationDate = timeOrNil(&k.CreationDate)
	key.Status.DeletionDate = timeOrNil(k.DeletionDate)
	key.Status.PrimaryRegion, key.Status.ReplicaRegions = k.PrimaryRegion, k.ReplicaRegions
	if obs.rotation != nil {
		rs := statusRotation(key)
		rs.Enabled, rs.PeriodInDays = obs.rotation.Enabled, obs.rotation.PeriodInDays
		rs.NextRotationDate = timeOrNil(obs.rotation.NextRotationDate)
	}
}

// recordApplied updates status to what the applied changes made of the key,
// instead of spending reads to see it.
func recordApplied(key *kmsv1alpha1.Key, obs *observed) {
	if kmsclient.PendingDeletion(obs.key.State) {
		key.Status.KeyState, key.Status.DeletionDate = kmsclient.StateDisabled, nil
	}
	switch key.Status.KeyState {
	case kmsclient.StateEnabled, kmsclient.StateDisabled:
		key.Status.KeyState = kmsclient.StateDisabled
		if key.Spec.WantsEnabled() {
			key.Status.KeyState = kmsclient.StateEnabled
		}
	}
	if obs.rotation == nil || kmsclient.PendingDeletion(obs.key.State) {
		return
	}
	rs := statusRotation(key)
	on, period := key.Spec.EffectiveRotation()
	if rs.Enabled != on || (on && rs.PeriodInDays != period) {
		rs.Enabled, rs.PeriodInDays, rs.NextRotationDate = on, 0, nil
		if on {
			rs.PeriodInDays = period
			next := metav1.NewTime(time.Now().AddDate(0, 0, int(period)).UTC().Truncate(time.Second))
			rs.NextRotationDate = &next
		}
	}
}

// reportApplied sets the conditions of a Key whose spec was applied: Ready
// follows the key's state in KMS.
func (r *KeyReconciler) reportApplied(key *kmsv1alpha1.Key, obs *observed, applied []string) ctrl.Result {
	setSynced(key, true, kmsv1alpha1.ReasonReconcileSuccess, syncedMessage(applied))
	if kmsclient.PendingDeletion(obs.key.State) {
		// The other aspects could not be read while the deletion was pending.
		setReady(key, false, kmsv1alpha1.ReasonUpdating, "the key's scheduled deletion was cancelled; reading the key again")
		return ctrl.Result{RequeueAfter: time.Second}
	}
	switch key.Status.KeyState {
	case kmsclient.StateEnabled, kmsclient.StateDisabled:
		setReady(key, true, kmsv1alpha1.ReasonAvailable, "the KMS key matches the spec")
		return resync(r.SyncPeriod)
	case kmsclient.StatePendingImport:
		msg := "the key waits for its key material: import it with GetParametersForImport and ImportKeyMaterial (origin EXTERNAL), or declare spec.keyMaterial"
		if key.Spec.KeyMaterial != nil {
			msg = "the key waits for key material the Secret does not hold: an older material, kept to decrypt, was deleted or has expired (status.keyMaterial.rotations); import it again by hand"
		}
		setReady(key, false, kmsv1alpha1.ReasonInvalidKeyState, msg)
		return resync(r.SyncPeriod)
	case kmsclient.StateCreating, kmsclient.StateUpdating:
		// Passing states of multi-Region keys: a few seconds.
		setReady(key, false, kmsv1alpha1.ReasonUpdating, fmt.Sprintf("the key is %s in KMS; looking again shortly", key.Status.KeyState))
		return ctrl.Result{RequeueAfter: failoverRecheck}
	default:
		setReady(key, false, kmsv1alpha1.ReasonInvalidKeyState,
			fmt.Sprintf("the key is %s in KMS; waiting for it to settle", key.Status.KeyState))
		return ctrl.Result{RequeueAfter: transitionalRecheck}
	}
}

// reportObserved is the Observe policy's outcome: differences are reported,
// never fixed (managed_key.go).
func (r *KeyReconciler) reportObserved(key *kmsv1alpha1.Key, ds []difference) ctrl.Result {
	return reportDrift(r.recorder, key, ds, r.SyncPeriod)
}

// eventChanges emits one event for the changes made: the creation of a new
// key with what it took besides CreateKey, else drift corrections or updates
// (managed_key.go).
func (r *KeyReconciler) eventChanges(key *kmsv1alpha1.Key, obs *observed, applied []string) {
	if obs.created {
		note := "created KMS key " + obs.key.ID
		if len(applied) > 0 {
			note += " and set: " + strings.Join(applied, ", ")
		}
		r.event(key, corev1.EventTypeNormal, "Created", "CreateKey", "%s", note)
		return
	}
	eventApplied(r.recorder, key, key.Status.ObservedGeneration, key.Status.KeyID, applied)
}

func syncedMessage(applied []string) string {
	if len(applied) == 0 {
		return "the spec is applied"
	}
	return "the spec is applied; changed: " + strings.Join(applied, ", ")
}

func statusRotation(key *kmsv1alpha1.Key) *kmsv1alpha1.KeyRotationStatus {
	if key.Status.Rotation == nil {
		key.Status.Rotation = &kmsv1alpha1.KeyRotationStatus{}
	}
	return key.Status.Rotation
}

func timeOrNil(t *time.Time) *metav1.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	mt := metav1.NewTime(t.UTC().Truncate(time.Second))
	return &mt
}
