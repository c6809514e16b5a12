package controllers

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
	"github.com/kmsoperator/kms-operator/internal/kmsclient/kmsfake"
)

func TestKeyAdoption(t *testing.T) {
	otherUID := types.UID("uid-of-a-deleted-object")
	cases := map[string]struct {
		reason    string
		allow     bool
		tags      map[string]string // on the existing key
		scheduled bool              // the existing key is pending deletion
		calls     []string
		synced    string
		requeue   string
		keyID     bool              // status.keyID names the key
		next      []string          // calls of the following reconcile
		wantTags  map[string]string // the key's tags afterwards
		wantState string            // the key's state afterwards
	}{
		"Unowned": {
			reason: "An unowned key is adopted and tagged as this object's.",
			allow:  true, tags: map[string]string{"team": "a"},
			calls:  []string{"DescribeKey", "ListResourceTags", "GetKeyRotationStatus", "TagResource"},
			synced: "True/ReconcileSuccess", requeue: "resync", keyID: true,
			wantTags: ownership(keyTestUID, map[string]string{"team": "a"}), wantState: kmsclient.StateEnabled,
			next: []string{"DescribeKey", "ListResourceTags", "GetKeyRotationStatus"},
		},
		"FlagOff": {
			reason: "Without --allow-adoption nothing is asked of KMS and nothing is retried hot.",
			tags:   map[string]string{"team": "a"},
			synced: "False/AdoptionRefused", requeue: "resync",
			wantTags: map[string]string{"team": "a"}, wantState: kmsclient.StateEnabled,
		},
		"OtherNamespace": {
			reason: "A key owned by a Key of another namespace is refused.",
			allow:  true, tags: ownedBy("team-b", keyTestName, keyTestCluster),
			calls:  []string{"DescribeKey", "ListResourceTags"},
			synced: "False/AdoptionRefused", requeue: "resync",
			wantTags: ownedBy("team-b", keyTestName, keyTestCluster), wantState: kmsclient.StateEnabled,
		},
		"OtherName": {
			reason: "A key owned by another Key of the namespace is refused.",
			allow:  true, tags: ownedBy(keyTestNS, "other", keyTestCluster),
			calls:  []string{"DescribeKey", "ListResourceTags"},
			synced: "False/AdoptionRefused", requeue: "resync",
			wantTags: ownedBy(keyTestNS, "other", keyTestCluster), wantState: kmsclient.StateEnabled,
		},
		"OtherCluster": {
			reason: "A key owned by the same namespace/name of another cluster is refused.",
			allow:  true, tags: ownedBy(keyTestNS, keyTestName, "elsewhere"),
			calls:  []string{"DescribeKey", "ListResourceTags"},
			synced: "False/AdoptionRefused", requeue: "resync",
			wantTags: ownedBy(keyTestNS, keyTestName, "elsewhere"), wantState: kmsclient.StateEnabled,
		},
		"SameNameNewUID": {
			reason: "A Key re-created with the same namespace/name gets its key back; the owner UID tag is updated.",
			allow:  true, tags: ownership(otherUID, nil),
			calls:  []string{"DescribeKey", "ListResourceTags", "GetKeyRotationStatus", "TagResource"},
			synced: "True/ReconcileSuccess", requeue: "resync", keyID: true,
			wantTags: ownership(keyTestUID, nil), wantState: kmsclient.StateEnabled,
			next: []string{"DescribeKey", "ListResourceTags", "GetKeyRotationStatus"},
		},
		"PendingDeletion": {
			reason: "Adopting a key pending deletion cancels the deletion and enables it; the rest follows a second later.",
			allow:  true, scheduled: true,
			calls:  []string{"DescribeKey", "ListResourceTags", "CancelKeyDeletion", "EnableKey"},
			synced: "True/ReconcileSuccess", requeue: "1s", keyID: true,
			wantTags: map[string]string{}, wantState: kmsclient.StateEnabled,
			next: []string{"DescribeKey", "ListResourceTags", "GetKeyRotationStatus", "TagResource"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			p := kmsfake.NewFakeProvider()
			f := p.Fake("")
			kk, err := f.CreateKey(ctx, kmsclient.CreateKeyInput{Tags: tc.tags})
			if err != nil {
				t.Fatal(err)
			}
			if tc.scheduled {
				if _, err := f.ScheduleDeletion(ctx, kk.ID, 30); err != nil {
					t.Fatal(err)
				}
			}
			e := newKeyEnv(t, newKey(withTags(without(tc.tags, kmsv1alpha1.TagPrefix)), withKeyID(kk.ARN)))
			e.useKMS(p, tc.allow)
			f.ResetCalls()

			res, err := e.reconcile()
			if err != nil {
				t.Errorf("%s\nreconcile returned %v, want nil", tc.reason, err)
			}
			k := e.get()
			got := []string{condition(k.Status.Conditions, kmsv1alpha1.ConditionSynced), requeue(res)}
			if diff := cmp.Diff([]string{tc.synced, tc.requeue}, got); diff != "" {
				t.Errorf("%s\nSynced, requeue (-want +got):\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.calls, f.Calls()); diff != "" {
				t.Errorf("%s\ncalls (-want +got):\n%s", tc.reason, diff)
			}
			if (k.Status.KeyID == kk.ID) != tc.keyID || (!tc.keyID && k.Status.KeyID != "") {
				t.Errorf("%s\nstatus.keyID = %q (key %s), want it set: %v", tc.reason, k.Status.KeyID, kk.ID, tc.keyID)
			}
			if got := e.kmsKey(kk.ID).State; got != tc.wantState {
				t.Errorf("%s\nKMS key state %s, want %s", tc.reason, got, tc.wantState)
			}
			if diff := cmp.Diff(tc.wantTags, e.kmsTags(kk.ID), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\nKMS tags (-want +got):\n%s", tc.reason, diff)
			}
			if tc.next == nil {
				return
			}
			// The adopted key is the object's own from now on (spec.keyID
			// is its ARN, status.keyID its id).
			f.ResetCalls()
			e.mustReconcile()
			if diff := cmp.Diff(tc.next, f.Calls()); diff != "" {
				t.Errorf("%s\ncalls of the next reconcile (-want +got):\n%s", tc.reason, diff)
			}
			if got := condition(e.get().Status.Conditions, kmsv1alpha1.ConditionReady); got != "True/Available" {
				t.Errorf("%s\nnext reconcile: Ready %s", tc.reason, got)
			}
		})
	}
}

// without returns tags minus the keys starting with prefix.
func without(tags map[string]string, prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range tags {
		if !strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}

func TestKeyCrashSafeCreate(t *testing.T) {
	lost := kmsclient.NewError("CreateKey", kmsclient.Transient, "", "read tcp: connection reset by peer")
	cases := map[string]struct {
		reason string
		// crash creates the key and loses its id: on return the object must
		// be as the next reconcile would read it.
		crash func(t *testing.T, e *keyEnv)
		// restart: the next reconcile is another process's.
		restart bool
		calls   []string
		events  []string
	}{
		"CreateKeyResponseLost": {
			reason: "A CreateKey whose response was lost is found by its owner tag after a restart.",
			crash: func(t *testing.T, e *keyEnv) {
				e.kms.LoseResponse("CreateKey", lost, 1)
				if _, err := e.reconcile(); err == nil {
					t.Fatal("reconcile with a lost CreateKey response returned nil")
				}
				k := e.get()
				if _, ok := k.Annotations[kmsv1alpha1.AnnotationCreateStarted]; !ok || k.Status.KeyID != "" {
					t.Fatalf("after the lost response: annotations %v, keyID %q", k.Annotations, k.Status.KeyID)
				}
				if got := condition(k.Status.Conditions, kmsv1alpha1.ConditionSynced); got != "False/ReconcileError" {
					t.Errorf("after the lost response: Synced %s, want False/ReconcileError", got)
				}
			},
			restart: true,
			// The lost attempt never got to enable rotation.
			calls:  []string{"GetResources", "DescribeKey", "ListResourceTags", "GetKeyRotationStatus", "EnableKeyRotation"},
			events: []string{"Normal Recovered", "Normal Updated"},
		},
		"NewUID": {
			reason: "A Key re-applied from Git or restored with a new UID (no annotation, no status) finds its key by cluster, namespace and name, and rebinds it.",
			crash: func(t *testing.T, e *keyEnv) {
				e.create()
				k := e.get()
				k.Finalizers = nil // gone without the operator: a cluster rebuilt from Git
				if err := e.c.Update(context.Background(), k); err != nil {
					t.Fatal(err)
				}
				if err := e.c.Delete(context.Background(), k); err != nil {
					t.Fatal(err)
				}
				fresh := newKey(withDescription("d"), withRotation(365))
				fresh.UID = "uid-team-a-k-restored"
				if err := e.c.Create(context.Background(), fresh); err != nil {
					t.Fatal(err)
				}
			},
			restart: true,
			calls:   []string{"GetResources", "DescribeKey", "ListResourceTags", "GetKeyRotationStatus", "TagResource"},
			events:  []string{"Normal Rebound", "Normal Updated"},
		},
		"StatusLost": {
			reason: "An object whose status was lost (restored from a backup) keeps its annotation, which leads to its key.",
			crash: func(t *testing.T, e *keyEnv) {
				e.create()
				e.setStatus(kmsv1alpha1.KeyStatus{})
			},
			restart: true,
			calls:   []string{"GetResources", "DescribeKey", "ListResourceTags", "GetKeyRotationStatus"},
			events:  []string{"Normal Recovered"},
		},
		"StaleCache": {
			reason: "A reconcile reading a cached object from before the key's creation uses the id this process remembers.",
			crash: func(t *testing.T, e *keyEnv) {
				e.create()
				k := e.get()
				delete(k.Annotations, kmsv1alpha1.AnnotationCreateStarted)
				if err := e.c.Update(context.Background(), k); err != nil {
					t.Fatal(err)
				}
				e.setStatus(kmsv1alpha1.KeyStatus{})
			},
			calls: []string{"DescribeKey", "ListResourceTags", "GetKeyRotationStatus"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := newKeyEnv(t, newKey(withDescription("d"), withRotation(365)))
			tc.crash(t, e)
			if tc.restart {
				e.restart()
			}
			e.kms.ResetCalls()
			drainEvents(e.rec)

			res := e.mustReconcile()
			if diff := cmp.Diff(tc.calls, e.kms.Calls()); diff != "" {
				t.Errorf("%s\ncalls (-want +got):\n%s", tc.reason, diff)
			}
			keys := e.kms.Keys()
			k := e.get()
			if len(keys) != 1 || k.Status.KeyID != keys[0].ID {
				t.Fatalf("%s\nstatus.keyID %q; KMS keys %+v; want exactly one, recorded", tc.reason, k.Status.KeyID, keys)
			}
			got := []string{condition(k.Status.Conditions, kmsv1alpha1.ConditionReady), requeue(res)}
			if diff := cmp.Diff([]string{"True/Available", "resync"}, got); diff != "" {
				t.Errorf("%s\nReady, requeue (-want +got):\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.events, drainEvents(e.rec)); diff != "" {
				t.Errorf("%s\nevents (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

// TestKeyRetryAfterFailedCreate: a CreateKey that KMS refused (throttled,
// invalid) made no key, so the retry creates at once. A transient failure may
// hide a key KMS does not list yet, and a restart forgets which attempts were
// refused: then the retry looks for the key and waits, and creates only once
// KMS has had its consistency window to list it.
func TestKeyRetryAfterFailedCreate(t *testing.T) {
	throttled := kmsclient.NewError("CreateKey", kmsclient.Throttled, "ThrottlingException", "Rate exceeded")
	internal := kmsclient.NewError("CreateKey", kmsclient.Transient, "KMSInternalException", "internal error")
	create := []string{"GetResources", "CreateKey", "EnableKeyRotation"}
	cases := map[string]struct {
		err     error
		restart bool
		wait    bool
	}{
		"Throttled":            {err: throttled},
		"ThrottledThenRestart": {err: throttled, restart: true, wait: true},
		"TransientMayHaveMade": {err: internal, wait: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := newKeyEnv(t, newKey(withDescription("d"), withRotation(365)))
			e.kms.Fail("CreateKey", tc.err, 1)
			if _, err := e.reconcile(); err == nil {
				t.Fatal("reconcile with a failing CreateKey returned nil")
			}
			if tc.restart {
				e.restart()
			}
			if tc.wait {
				e.kms.ResetCalls()
				if _, err := e.reconcile(); !isPropagating(err) {
					t.Fatalf("retry within the window: %v, want a wait", err)
				}
				if diff := cmp.Diff([]string{"GetResources"}, e.kms.Calls()); diff != "" {
					t.Errorf("calls of the waiting retry (-want +got):\n%s", diff)
				}
				e.ageCreateAttempt(DefaultConsistencyWindow)
			}
			e.kms.ResetCalls()
			e.finishCreation(e.mustReconcile())
			if diff := cmp.Diff(create, e.kms.Calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if keys := e.kms.Keys(); len(keys) != 1 || e.get().Status.KeyID != keys[0].ID {
				t.Errorf("KMS keys %+v, status.keyID %q: want exactly one, recorded", keys, e.get().Status.KeyID)
			}
		})
	}
}

// TestKeyCreationFinishedLater: KMS shows a new key to the other operations
// only after a while, so a new key's rotation is enabled a moment later
// (createdRecheck), and again later while KMS still answers NotFound; the
// key is not read back, and the creation ends in one status write and one
// Created event.
func TestKeyCreationFinishedLater(t *testing.T) {
	e := newKeyEnv(t, newKey(withRotation(180)))
	type step struct {
		Calls   []string
		Requeue string
		KeyID   bool // recorded in status
		Events  []string
	}
	var got []step
	record := func(res ctrl.Result) {
		got = append(got, step{e.kms.Calls(), requeue(res), e.get().Status.KeyID != "", drainEvents(e.rec)})
		e.kms.ResetCalls()
	}
	record(e.mustReconcile())
	e.kms.Fail("EnableKeyRotation", kmsclient.CodeError("EnableKeyRotation", "NotFoundException", "Key does not exist"), 1)
	record(e.mustReconcile())
	record(e.mustReconcile())
	recheck := createdRecheck.String()
	want := []step{
		{Calls: []string{"GetResources", "CreateKey"}, Requeue: recheck},
		{Calls: []string{"EnableKeyRotation"}, Requeue: recheck},
		{Calls: []string{"EnableKeyRotation"}, Requeue: "resync", KeyID: true, Events: []string{"Normal Created"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("reconciles (-want +got):\n%s", diff)
	}
	if k := e.get(); condition(k.Status.Conditions, kmsv1alpha1.ConditionReady) != "True/Available" || len(e.kms.Keys()) != 1 {
		t.Errorf("status %+v, %d keys; want one key, Ready", k.Status, len(e.kms.Keys()))
	}
}
