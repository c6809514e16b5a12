package controllers

import (
	"context"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

func TestKeyFailover(t *testing.T) {
	// family makes the primary Key and a Ready replica in west.
	family := func(t *testing.T, e *regionEnv, mutators ...func(*kmsv1alpha1.Key)) string {
		t.Helper()
		createObjects(t, e, newMRKey(mutators...), newReplicaKey("eu", west))
		id := e.primaryReady()
		e.replicaReady("eu")
		e.mustKey()
		e.resetCalls()
		return id
	}
	runReplicaCases(t, map[string]replicaCase{
		"StatusShowsFamily": {
			reason: "A multi-Region Key's status shows where the primary and the replicas are.",
			run: func(t *testing.T, e *regionEnv) any {
				family(t, e)
				return []any{e.key().Status.PrimaryRegion, e.key().Status.ReplicaRegions}
			},
			want: []any{east, []string{west}},
		},
		"Declared": {
			reason: "spec.primaryRegion fails over with one UpdatePrimaryRegion, sent to the primary's region; both objects then show the new primary, and the next reconciles change nothing (no fight); failing back goes to the new primary's region.",
			run: func(t *testing.T, e *regionEnv) any {
				id := family(t, e)
				key := e.key()
				e.update(key, func() { key.Spec.PrimaryRegion = west })
				res := e.mustKey()
				after := []any{e.kms(east).Count("UpdatePrimaryRegion"), e.key().Status.PrimaryRegion, requeue(res), e.describe(west, id).MultiRegionType}
				e.mustKey()
				e.mustReplica("eu")
				r := e.replica("eu")
				e.resetCalls()
				e.mustKey()
				e.mustReplica("eu")
				noFight := e.kms(east).Count("UpdatePrimaryRegion") + e.kms(west).Count("UpdatePrimaryRegion")
				e.update(key, func() { key.Spec.PrimaryRegion = east })
				e.mustKey()
				return append(after, e.key().Status.PrimaryRegion, r.Status.PrimaryRegion, condition(r.Status.Conditions, kmsv1alpha1.ConditionReady),
					noFight, e.kms(west).Count("UpdatePrimaryRegion"), e.describe(east, id).MultiRegionType)
			},
			want: []any{1, west, "5s", kmsclient.MultiRegionPrimary, east, west, "True/Available", 0, 1, kmsclient.MultiRegionPrimary},
		},
		"NoReplicaThere": {
			reason: "A primary region without a replica waits for one (WaitingForReplicas), and sends nothing.",
			run: func(t *testing.T, e *regionEnv) any {
				family(t, e)
				key := e.key()
				e.update(key, func() { key.Spec.PrimaryRegion = asia })
				e.mustKey()
				return []any{syncedOf(e.key()), e.kms(east).Count("UpdatePrimaryRegion")}
			},
			want: []any{"False/WaitingForReplicas", 0},
		},
		"UndeclaredNotReverted": {
			reason: "Without spec.primaryRegion a failover made elsewhere is reported, never turned back.",
			run: func(t *testing.T, e *regionEnv) any {
				id := family(t, e)
				if err := e.kms(east).UpdatePrimaryRegion(context.Background(), id, west); err != nil {
					t.Fatal(err)
				}
				e.resetCalls()
				e.mustKey()
				return []any{e.kms(east).Count("UpdatePrimaryRegion") + e.kms(west).Count("UpdatePrimaryRegion"), e.key().Status.PrimaryRegion,
					condition(e.key().Status.Conditions, kmsv1alpha1.ConditionReady)}
			},
			want: []any{0, west, "True/Available"},
		},
		"RotationGoesToThePrimary": {
			reason: "After a failover the Key's own key is a replica: rotation, a property the family shares, is changed on the primary.",
			run: func(t *testing.T, e *regionEnv) any {
				id := family(t, e, func(k *kmsv1alpha1.Key) { k.Spec.PrimaryRegion = west })
				key := e.key()
				e.update(key, func() { key.Spec.Rotation = &kmsv1alpha1.KeyRotation{Enabled: true, PeriodInDays: 180} })
				e.mustKey()
				rot, _ := e.kms(east).GetRotation(context.Background(), id)
				return []any{e.kms(east).Count("EnableKeyRotation"), e.kms(west).Count("EnableKeyRotation"), rot.Enabled, syncedOf(e.key())}
			},
			want: []any{0, 1, true, "True/ReconcileSuccess"},
		},
	})
}

func TestKeyDeleteWithReplicas(t *testing.T) {
	runReplicaCases(t, map[string]replicaCase{
		"ManagedReplicaFirst": {
			reason: "A primary whose replica a ReplicaKey still declares waits for it (no ScheduleKeyDeletion, finalizer kept); once the replica is on its way out, the primary is scheduled, waits in PendingReplicaDeletion with no date, and the object is released.",
			run: func(t *testing.T, e *regionEnv) any {
				createObjects(t, e, newMRKey(), newReplicaKey("eu", west))
				id := e.primaryReady()
				e.replicaReady("eu")
				e.remove(e.key())
				e.mustKey()
				waiting := []any{syncedOf(e.key()), e.kms(east).Count("ScheduleKeyDeletion"), controllerutil.ContainsFinalizer(e.key(), kmsv1alpha1.Finalizer)}
				e.remove(e.replica("eu"))
				e.mustReplica("eu")
				e.mustKey()
				k := e.describe(east, id)
				gone := &kmsv1alpha1.Key{}
				err := e.c.Get(context.Background(), reqOf(newKey()).NamespacedName, gone)
				return append(waiting, k.State, k.DeletionDate == nil, err != nil)
			},
			want: []any{"False/WaitingForReplicas", 0, true, kmsclient.StatePendingReplicaDeletion, true, true},
		},
		"UnmanagedReplica": {
			reason: "A replica no object manages is KMS's business: the primary is scheduled at once and waits for it (PendingReplicaDeletion).",
			run: func(t *testing.T, e *regionEnv) any {
				createObjects(t, e, newMRKey())
				id := e.primaryReady()
				if _, err := e.kms(east).ReplicateKey(context.Background(), kmsclient.ReplicateKeyInput{KeyID: id, Region: west}); err != nil {
					t.Fatal(err)
				}
				e.remove(e.key())
				e.mustKey()
				return e.describe(east, id).State
			},
			want: kmsclient.StatePendingReplicaDeletion,
		},
	})
}
