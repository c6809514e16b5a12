package controllers

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

func TestKeyDelete(t *testing.T) {
	lost := kmsclient.NewError("CreateKey", kmsclient.Transient, "", "context deadline exceeded")
	cases := map[string]struct {
		reason string
		key    *kmsv1alpha1.Key
		// setup makes the KMS side; it returns the key id to look at ("" none).
		setup     func(t *testing.T, e *keyEnv) string
		calls     []string
		wantState string // of the key afterwards
		// window: the key's deletion date is this many days away.
		window    int
		wantTags  map[string]string
		wantEvent []string
	}{
		"Delete": {
			reason: "Delete schedules the key's deletion with the declared window and releases the object.",
			key:    newKey(withTags(map[string]string{"team": "a"}), func(k *kmsv1alpha1.Key) { k.Spec.PendingWindowInDays = 7 }),
			setup:  func(t *testing.T, e *keyEnv) string { return e.create() },
			calls:  []string{"DescribeKey", "ScheduleKeyDeletion"}, wantState: kmsclient.StatePendingDeletion, window: 7,
			wantEvent: []string{"Normal DeletionScheduled"},
		},
		"AlreadyPendingDeletion": {
			reason: "A key already pending deletion is not scheduled again.",
			key:    newKey(),
			setup: func(t *testing.T, e *keyEnv) string {
				id := e.create()
				if _, err := e.kms.ScheduleDeletion(context.Background(), id, 30); err != nil {
					t.Fatal(err)
				}
				return id
			},
			calls: []string{"DescribeKey"}, wantState: kmsclient.StatePendingDeletion, window: 30,
		},
		"KeyGone": {
			reason: "A key that no longer exists needs nothing more.",
			key: newKey(func(k *kmsv1alpha1.Key) {
				k.Finalizers = []string{kmsv1alpha1.Finalizer}
				k.Status.KeyID = "0badc0de-0000-4000-8000-000000000000"
			}),
			setup: func(*testing.T, *keyEnv) string { return "" },
			calls: []string{"DescribeKey"},
		},
		"Retain": {
			reason: "Retain removes the four ownership tags and leaves the key enabled.",
			key: newKey(withTags(map[string]string{"team": "a"}), func(k *kmsv1alpha1.Key) {
				k.Spec.DeletionPolicy = kmsv1alpha1.DeletionPolicyRetain
			}),
			setup: func(t *testing.T, e *keyEnv) string { return e.create() },
			calls: []string{"UntagResource"}, wantState: kmsclient.StateEnabled,
			wantTags: map[string]string{"team": "a"}, wantEvent: []string{"Normal Retained"},
		},
		"RetainKeyGone": {
			reason: "Retain of a key that no longer exists needs nothing more.",
			key: newKey(func(k *kmsv1alpha1.Key) {
				k.Spec.DeletionPolicy = kmsv1alpha1.DeletionPolicyRetain
				k.Finalizers = []string{kmsv1alpha1.Finalizer}
				k.Status.KeyID = "0badc0de-0000-4000-8000-000000000000"
			}),
			setup: func(*testing.T, *keyEnv) string { return "" },
			calls: []string{"UntagResource"},
		},
		"RetainPendingDeletion": {
			reason: "Retain of a key already pending deletion (KMS refuses to untag it) is done, not wedged.",
			key: newKey(func(k *kmsv1alpha1.Key) {
				k.Spec.DeletionPolicy = kmsv1alpha1.DeletionPolicyRetain
			}),
			setup: func(t *testing.T, e *keyEnv) string {
				id := e.create()
				if _, err := e.kms.ScheduleDeletion(context.Background(), id, 30); err != nil {
					t.Fatal(err)
				}
				return id
			},
			calls: []string{"UntagResource", "DescribeKey"}, wantState: kmsclient.StatePendingDeletion, window: 30,
		},
		"AdoptionRefused": {
			reason: "An object whose adoption was refused never touches the key it named.",
			key: newKey(func(k *kmsv1alpha1.Key) {
				k.Finalizers = []string{kmsv1alpha1.Finalizer}
			}),
			setup: func(t *testing.T, e *keyEnv) string {
				id := e.unmanagedKey(kmsclient.CreateKeyInput{Tags: ownedBy("team-b", keyTestName, keyTestCluster)})
				k := e.get()
				k.Spec.KeyID = id
				if err := e.c.Update(context.Background(), k); err != nil {
					t.Fatal(err)
				}
				e.mustReconcile() // refused: adoption is off
				if got := condition(e.get().Status.Conditions, kmsv1alpha1.ConditionSynced); got != "False/AdoptionRefused" {
					t.Fatalf("Synced %s, want False/AdoptionRefused", got)
				}
				return id
			},
			wantState: kmsclient.StateEnabled, wantTags: ownedBy("team-b", keyTestName, keyTestCluster),
		},
		"Observe": {
			reason: "An observed key is never written, even when the object carries the finalizer.",
			key: newKey(withObserve(), func(k *kmsv1alpha1.Key) {
				k.Finalizers = []string{kmsv1alpha1.Finalizer}
			}),
			setup: func(t *testing.T, e *keyEnv) string {
				id := e.unmanagedKey(kmsclient.CreateKeyInput{})
				k := e.get()
				k.Spec.KeyID = id
				if err := e.c.Update(context.Background(), k); err != nil {
					t.Fatal(err)
				}
				e.setStatus(kmsv1alpha1.KeyStatus{KeyID: id})
				return id
			},
			wantState: kmsclient.StateEnabled, wantTags: map[string]string{},
		},
		"AfterLostCreate": {
			reason: "A key whose CreateKey response was lost is found by its owner tag and scheduled for deletion.",
			key:    newKey(),
			setup: func(t *testing.T, e *keyEnv) string {
				e.kms.LoseResponse("CreateKey", lost, 1)
				if _, err := e.reconcile(); err == nil {
					t.Fatal("reconcile with a lost CreateKey response returned nil")
				}
				e.restart()
				return e.kms.Keys()[0].ID
			},
			calls:     []string{"GetResources", "DescribeKey", "ScheduleKeyDeletion"},
			wantState: kmsclient.StatePendingDeletion, window: 30,
			wantEvent: []string{"Normal Recovered", "Normal DeletionScheduled"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			e := newKeyEnv(t, tc.key)
			id := tc.setup(t, e)
			if err := e.c.Delete(ctx, e.get()); err != nil {
				t.Fatal(err)
			}
			e.kms.ResetCalls()
			drainEvents(e.rec)

			res, err := e.reconcile()
			if err != nil || res.RequeueAfter != 0 {
				t.Errorf("%s\nreconcile: %v, requeue %s; want nil, none", tc.reason, err, requeue(res))
			}
			if diff := cmp.Diff(tc.calls, e.kms.Calls()); diff != "" {
				t.Errorf("%s\ncalls (-want +got):\n%s", tc.reason, diff)
			}
			if k := e.get(); k != nil {
				t.Errorf("%s\nobject still there with finalizers %v", tc.reason, k.Finalizers)
			}
			if diff := cmp.Diff(tc.wantEvent, drainEvents(e.rec)); diff != "" {
				t.Errorf("%s\nevents (-want +got):\n%s", tc.reason, diff)
			}
			if id == "" {
				return
			}
			if got := len(e.kms.Keys()); got != 1 {
				t.Errorf("%s\n%d KMS keys, want 1", tc.reason, got)
			}
			kk := e.kmsKey(id)
			if kk.State != tc.wantState {
				t.Errorf("%s\nKMS key state %s, want %s", tc.reason, kk.State, tc.wantState)
			}
			if tc.window > 0 {
				if kk.DeletionDate == nil {
					t.Fatalf("%s\nno deletion date", tc.reason)
				}
				if d := kk.DeletionDate.Sub(time.Now().AddDate(0, 0, tc.window)); d < -time.Minute || d > time.Minute {
					t.Errorf("%s\ndeletion date %s is not %d days away", tc.reason, kk.DeletionDate, tc.window)
				}
			}
			if tc.wantTags != nil {
				if diff := cmp.Diff(tc.wantTags, e.kmsTags(id), cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("%s\nKMS tags (-want +got):\n%s", tc.reason, diff)
				}
			}
		})
	}
}
