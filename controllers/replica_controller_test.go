package controllers

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// replicaCase is one behaviour of the ReplicaKey reconciler: run sets it up
// and returns what it saw.
type replicaCase struct {
	reason string
	run    func(t *testing.T, e *regionEnv) any
	want   any
}

func runReplicaCases(t *testing.T, cases map[string]replicaCase) {
	t.Helper()
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.run(t, newRegionEnv(t))); diff != "" {
				t.Errorf("%s\n-want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func createObjects(t *testing.T, e *regionEnv, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := e.c.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
}

func reqOf(o client.Object) ctrl.Request {
	return ctrl.Request{NamespacedName: client.ObjectKeyFromObject(o)}
}

func TestReplicaKeyCreate(t *testing.T) {
	runReplicaCases(t, map[string]replicaCase{
		"Replicated": {
			reason: "ReplicateKey, sent to the primary's region, takes description, policy and tags (ownership tags with the kind) in one call; the replica is Creating, then Ready.",
			run: func(t *testing.T, e *regionEnv) any {
				createObjects(t, e, newMRKey(), newReplicaKey("eu", west, func(r *kmsv1alpha1.ReplicaKey) {
					r.Spec.Description, r.Spec.Policy, r.Spec.Tags = "eu copy", keyPolicy, map[string]string{"team": "a"}
				}))
				id := e.primaryReady()
				e.resetCalls()
				res := e.mustReplica("eu")
				first := e.replica("eu")
				calls := []any{e.kms(east).Calls(), e.kms(west).Calls(), first.Status.KeyState, condition(first.Status.Conditions, kmsv1alpha1.ConditionReady), requeue(res), drainEvents(e.rec)}
				e.resetCalls()
				e.mustReplica("eu")
				r := e.replica("eu")
				tags, _ := e.kms(west).ListTags(context.Background(), id)
				return append(calls, e.kms(west).Calls()[:3], r.Status.KeyID == id, r.Status.ARN == e.describe(west, id).ARN, r.Status.KeyState,
					r.Status.PrimaryRegion, condition(r.Status.Conditions, kmsv1alpha1.ConditionReady), tags, e.describe(west, id).Description)
			},
			want: []any{[]string{"DescribeKey", "ReplicateKey"}, []string{"DescribeKey"}, "Creating", "False/Updating", "5s", []string{"Normal Created"},
				[]string{"DescribeKey", "ListResourceTags", "GetKeyPolicy"}, true, true, "Enabled",
				east, "True/Available", replicaOwnership("eu", map[string]string{"team": "a"}), "eu copy"},
		},
		"Disabled": {
			reason: "A replica declared disabled is disabled once it has left Creating.",
			run: func(t *testing.T, e *regionEnv) any {
				createObjects(t, e, newMRKey(), newReplicaKey("eu", west, func(r *kmsv1alpha1.ReplicaKey) { r.Spec.Enabled = new(bool) }))
				id := e.primaryReady()
				e.mustReplica("eu")
				e.resetCalls()
				e.mustReplica("eu")
				return []any{e.kms(west).Calls(), e.describe(west, id).State, e.replica("eu").Status.KeyState}
			},
			want: []any{[]string{"DescribeKey", "ListResourceTags", "DisableKey"}, "Disabled", "Disabled"},
		},
		"KeyWithoutKMSKey": {
			reason: "A ReplicaKey applied with its Key waits for the Key's KMS key, with no KMS call.",
			run: func(t *testing.T, e *regionEnv) any {
				createObjects(t, e, newMRKey(), newReplicaKey("eu", west))
				e.mustReplica("eu")
				return []any{syncedOf(e.replica("eu")), e.kms(east).Calls(), e.kms(west).Calls()}
			},
			want: []any{"False/WaitingForKey", []string(nil), []string(nil)},
		},
		"SingleRegionKey": {
			reason: "A Key that is not multi-Region has no replicas: admission cannot see it, so the reconcile says it.",
			run: func(t *testing.T, e *regionEnv) any {
				createObjects(t, e, newKey(), newReplicaKey("eu", west))
				e.primaryReady()
				e.mustReplica("eu")
				return syncedOf(e.replica("eu"))
			},
			want: "False/InvalidSpec",
		},
		"PrimaryRegion": {
			reason: "A replica in its primary's region is refused before any KMS call.",
			run: func(t *testing.T, e *regionEnv) any {
				createObjects(t, e, newMRKey(), newReplicaKey("us", east))
				e.primaryReady()
				e.resetCalls()
				e.mustReplica("us")
				return []any{syncedOf(e.replica("us")), e.kms(east).Calls()}
			},
			want: []any{"False/InvalidSpec", []string(nil)},
		},
		"LostAnswer": {
			reason: "A ReplicateKey whose answer was lost made the replica: the next reconcile finds it by its id in the region, its tags say it is ours, and no second replica is asked for.",
			run: func(t *testing.T, e *regionEnv) any {
				createObjects(t, e, newMRKey(), newReplicaKey("eu", west))
				e.primaryReady()
				e.kms(east).LoseResponse("ReplicateKey", kmsclient.NewError("ReplicateKey", kmsclient.Transient, "", "connection reset"), 1)
				_, err1 := e.reconcileReplica("eu")
				drainEvents(e.rec)
				e.restart()
				_, err2 := e.reconcileReplica("eu")
				return []any{err1 != nil, err2, e.kms(east).Count("ReplicateKey"), drainEvents(e.rec), e.replica("eu").Status.KeyID != ""}
			},
			want: []any{true, nil, 1, []string{"Normal Recovered"}, true},
		},
		"AfterFailover": {
			reason: "After a failover the primary is in another region: ReplicateKey goes there.",
			run: func(t *testing.T, e *regionEnv) any {
				createObjects(t, e, newMRKey(), newReplicaKey("eu", west), newReplicaKey("asia", asia))
				id := e.primaryReady()
				e.replicaReady("eu")
				if err := e.kms(east).UpdatePrimaryRegion(context.Background(), id, west); err != nil {
					t.Fatal(err)
				}
				e.resetCalls()
				e.mustReplica("asia")
				return []any{e.kms(east).Count("ReplicateKey"), e.kms(west).Count("ReplicateKey"), e.describe(asia, id).PrimaryRegion}
			},
			want: []any{0, 1, west},
		},
	})
}

func TestReplicaKeyOwnership(t *testing.T) {
	// existing makes a replica of the primary in west as someone else would.
	existing := func(t *testing.T, e *regionEnv, tags map[string]string) {
		t.Helper()
		id := e.primaryReady()
		if _, err := e.kms(east).ReplicateKey(context.Background(), kmsclient.ReplicateKeyInput{KeyID: id, Region: west, Tags: tags}); err != nil {
			t.Fatal(err)
		}
		e.resetCalls()
	}
	runReplicaCases(t, map[string]replicaCase{
		"UnclaimedRefused": {
			reason: "A replica that exists unclaimed is an adoption: refused without --allow-adoption, and not written.",
			run: func(t *testing.T, e *regionEnv) any {
				createObjects(t, e, newMRKey(), newReplicaKey("eu", west))
				existing(t, e, nil)
				e.mustReplica("eu")
				return []any{syncedOf(e.replica("eu")), e.kms(west).Count("TagResource"), e.kms(east).Count("ReplicateKey")}
			},
			want: []any{"False/AdoptionRefused", 0, 0},
		},
		"UnclaimedAdopted": {
			reason: "With --allow-adoption the replica is adopted: claimed with the ownership tags.",
			run: func(t *testing.T, e *regionEnv) any {
				e.opts.AllowAdoption = true
				e.restart()
				createObjects(t, e, newMRKey(), newReplicaKey("eu", west))
				existing(t, e, map[string]string{"x": "y"})
				e.mustReplica("eu")
				tags, _ := e.kms(west).ListTags(context.Background(), e.replica("eu").Status.KeyID)
				return []any{drainEvents(e.rec), tags}
			},
			want: []any{[]string{"Normal Adopted", "Normal Updated"}, replicaOwnership("eu", nil)},
		},
		"OtherOwner": {
			reason: "A replica another object owns is never taken, even with --allow-adoption.",
			run: func(t *testing.T, e *regionEnv) any {
				e.opts.AllowAdoption = true
				e.restart()
				createObjects(t, e, newMRKey(), newReplicaKey("eu", west))
				existing(t, e, replicaOwnership("other", nil))
				e.mustReplica("eu")
				return syncedOf(e.replica("eu"))
			},
			want: "False/AdoptionRefused",
		},
		"SameNameKeyIgnoresReplica": {
			reason: "A Key of the replica's name, in the replica's region, never takes the replica for its own key: the kind tag tells them apart.",
			run: func(t *testing.T, e *regionEnv) any {
				createObjects(t, e, newMRKey(), newReplicaKey("k2", west))
				e.primaryReady()
				e.replicaReady("k2")
				other := newKey(func(k *kmsv1alpha1.Key) { k.Name, k.UID, k.Spec.Region = "k2", "uid-k2-key", west })
				createObjects(t, e, other)
				if _, err := e.keys.Reconcile(context.Background(), reqOf(other)); err != nil {
					t.Fatal(err)
				}
				got := &kmsv1alpha1.Key{}
				_ = e.c.Get(context.Background(), reqOf(other).NamespacedName, got)
				return got.Status.KeyID != e.replica("k2").Status.KeyID
			},
			want: true,
		},
	})
}

func TestReplicaKeyDrift(t *testing.T) {
	runReplicaCases(t, map[string]replicaCase{
		"EachAspect": {
			reason: "Each aspect changed behind the operator's back is put back with one call, and named in a DriftCorrected event.",
			run: func(t *testing.T, e *regionEnv) any {
				createObjects(t, e, newMRKey(), newReplicaKey("eu", west, func(r *kmsv1alpha1.ReplicaKey) {
					r.Spec.Description, r.Spec.Policy, r.Spec.Tags = "eu", keyPolicy, map[string]string{"team": "a"}
				}))
				id := e.primaryReady()
				e.replicaReady("eu")
				w := e.kms(west)
				ctx := context.Background()
				_ = w.UpdateDescription(ctx, id, "changed")
				_ = w.PutKeyPolicy(ctx, id, keyPolicyOther, false)
				_ = w.TagKey(ctx, id, map[string]string{"team": "b", "extra": "1"})
				_ = w.DisableKey(ctx, id)
				e.resetCalls()
				e.mustReplica("eu")
				calls := w.Calls()[3:]
				tags, _ := w.ListTags(ctx, id)
				return []any{calls, drainEvents(e.rec), e.describe(west, id).Description, e.describe(west, id).State, tags}
			},
			want: []any{[]string{"UpdateKeyDescription", "PutKeyPolicy", "TagResource", "UntagResource", "EnableKey"},
				[]string{"Warning DriftCorrected"}, "eu", "Enabled", replicaOwnership("eu", map[string]string{"team": "a"})},
		},
		"Observe": {
			reason: "An observed replica (adoption allowed) is read and its differences reported, never written.",
			run: func(t *testing.T, e *regionEnv) any {
				e.opts.AllowAdoption = true
				e.restart()
				createObjects(t, e, newMRKey(), newReplicaKey("eu", west, func(r *kmsv1alpha1.ReplicaKey) {
					r.Spec.ManagementPolicy, r.Spec.Description = kmsv1alpha1.ManagementPolicyObserve, "wanted"
				}))
				id := e.primaryReady()
				if _, err := e.kms(east).ReplicateKey(context.Background(), kmsclient.ReplicateKeyInput{KeyID: id, Region: west}); err != nil {
					t.Fatal(err)
				}
				e.resetCalls()
				e.mustReplica("eu")
				r := e.replica("eu")
				return []any{e.kms(west).Calls(), condition(r.Status.Conditions, kmsv1alpha1.ConditionReady), condition(r.Status.Conditions, kmsv1alpha1.ConditionSynced), r.Finalizers}
			},
			want: []any{[]string{"DescribeKey", "ListResourceTags"}, "False/Drifted", "True/ObserveOnly", []string(nil)},
		},
	})
}

func TestReplicaKeyDelete(t *testing.T) {
	runReplicaCases(t, map[string]replicaCase{
		"Delete": {
			reason: "Deleting a ReplicaKey schedules its replica's deletion with the window and releases the object; the primary is untouched.",
			run: func(t *testing.T, e *regionEnv) any {
				createObjects(t, e, newMRKey(), newReplicaKey("eu", west, func(r *kmsv1alpha1.ReplicaKey) { r.Spec.PendingWindowInDays = 7 }))
				id := e.primaryReady()
				e.replicaReady("eu")
				e.remove(e.replica("eu"))
				e.mustReplica("eu")
				k := e.describe(west, id)
				days := k.DeletionDate.Sub(k.CreationDate).Hours() / 24
				return []any{k.State, days > 6.9 && days < 7.1, e.replica("eu") == nil, e.describe(east, id).State}
			},
			want: []any{kmsclient.StatePendingDeletion, true, true, kmsclient.StateEnabled},
		},
		"Retain": {
			reason: "Retain removes the ownership tags and leaves the replica.",
			run: func(t *testing.T, e *regionEnv) any {
				createObjects(t, e, newMRKey(), newReplicaKey("eu", west, func(r *kmsv1alpha1.ReplicaKey) {
					r.Spec.DeletionPolicy, r.Spec.Tags = kmsv1alpha1.DeletionPolicyRetain, map[string]string{"team": "a"}
				}))
				id := e.primaryReady()
				e.replicaReady("eu")
				e.remove(e.replica("eu"))
				e.mustReplica("eu")
				tags, _ := e.kms(west).ListTags(context.Background(), id)
				return []any{e.describe(west, id).State, tags, e.replica("eu") == nil}
			},
			want: []any{kmsclient.StateEnabled, map[string]string{"team": "a"}, true},
		},
	})
}

func TestReplicaKeyReferences(t *testing.T) {
	runReplicaCases(t, map[string]replicaCase{
		"AliasAndGrantInTheReplicasRegion": {
			reason: "An Alias and a Grant naming a ReplicaKey (kind ReplicaKey) live in the replica's region; one naming the Key stays in the Key's.",
			run: func(t *testing.T, e *regionEnv) any {
				replicaAlias := newAlias("eu-alias", "eu")
				replicaAlias.Spec.TargetKeyRef.Kind = kmsv1alpha1.KindReplicaKey
				keyAlias := newAlias("key-alias", keyTestName)
				keyAlias.Spec.Name = "alias/on-the-key"
				grant := newGrant("eu")
				grant.Spec.KeyRef.Kind = kmsv1alpha1.KindReplicaKey
				createObjects(t, e, newMRKey(), newReplicaKey("eu", west), replicaAlias, keyAlias, grant)
				id := e.primaryReady()
				e.replicaReady("eu")
				aliases := &AliasReconciler{Options: e.opts, client: e.c, recorder: e.rec}
				grants := &GrantReconciler{Options: e.opts, client: e.c, recorder: e.rec}
				for _, o := range []client.Object{replicaAlias, keyAlias} {
					if _, err := aliases.Reconcile(context.Background(), reqOf(o)); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := grants.Reconcile(context.Background(), reqOf(grant)); err != nil {
					t.Fatal(err)
				}
				inWest, _ := e.kms(west).GetAlias(context.Background(), replicaAlias.Spec.Name)
				inEast, _ := e.kms(east).GetAlias(context.Background(), keyAlias.Spec.Name)
				_, notInEast := e.kms(east).GetAlias(context.Background(), replicaAlias.Spec.Name)
				return []any{inWest != nil && inWest.TargetKeyID == id, inEast != nil && inEast.TargetKeyID == id, kmsclient.IsNotFound(notInEast),
					len(e.kms(west).Grants(id)), len(e.kms(east).Grants(id))}
			},
			want: []any{true, true, true, 1, 0},
		},
		"WaitsForTheReplica": {
			reason: "An Alias applied with its ReplicaKey waits for the replica (WaitingForKey), like one applied with its Key.",
			run: func(t *testing.T, e *regionEnv) any {
				a := newAlias("eu-alias", "eu")
				a.Spec.TargetKeyRef.Kind = kmsv1alpha1.KindReplicaKey
				createObjects(t, e, newMRKey(), newReplicaKey("eu", west), a)
				if _, err := (&AliasReconciler{Options: e.opts, client: e.c, recorder: e.rec}).Reconcile(context.Background(), reqOf(a)); err != nil {
					t.Fatal(err)
				}
				_ = e.c.Get(context.Background(), reqOf(a).NamespacedName, a)
				return syncedOf(a)
			},
			want: "False/WaitingForKey",
		},
	})
}
