package controllers

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

const testAlias = "alias/app"

// newAlias declares testAlias on the Key named ref.
func newAlias(name, ref string) *kmsv1alpha1.Alias {
	return &kmsv1alpha1.Alias{
		ObjectMeta: metav1.ObjectMeta{Namespace: refNS, Name: name, UID: types.UID("uid-alias-" + name), Generation: 1},
		Spec:       kmsv1alpha1.AliasSpec{Name: testAlias, TargetKeyRef: &kmsv1alpha1.LocalObjectReference{Name: ref}},
	}
}

// recorded gives a the status of an alias it created pointing at key sym.
func (w *refWorld) recorded(a *kmsv1alpha1.Alias, sym string) *kmsv1alpha1.Alias {
	a.Status.TargetKeyID, a.Status.ARN = w.ids[sym], aliasARN(w.arns[sym], a.Spec.Name)
	return a
}

// aliasOutcome is what a reconcile left behind.
type aliasOutcome struct {
	Err      bool
	Ready    string
	Synced   string
	Recorded string // symbolic key of status.targetKeyID
	InKMS    string // symbolic key the alias points at in KMS, "" if absent
	Gone     bool   // the object was released and deleted
	Calls    []string
	Events   []string
}

func reconcileAlias(t *testing.T, w *refWorld, c client.Client, a *kmsv1alpha1.Alias) aliasOutcome {
	t.Helper()
	rec := events.NewFakeRecorder(20)
	r := &AliasReconciler{Options: w.opts, client: c, recorder: rec}
	w.kms.ResetCalls()
	_, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(a)})
	got := aliasOutcome{Err: err != nil, Calls: w.kms.Calls(), Events: drainEvents(rec)}
	var after kmsv1alpha1.Alias
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(a), &after); apierrors.IsNotFound(err) {
		got.Gone = true
	} else if err != nil {
		t.Fatal(err)
	}
	got.Ready = condition(after.Status.Conditions, kmsv1alpha1.ConditionReady)
	got.Synced = condition(after.Status.Conditions, kmsv1alpha1.ConditionSynced)
	got.Recorded = w.sym(after.Status.TargetKeyID)
	if in, err := w.kms.GetAlias(context.Background(), testAlias); err == nil {
		got.InKMS = w.sym(in.TargetKeyID)
	}
	return got
}

var (
	available = "True/" + kmsv1alpha1.ReasonAvailable
	synced    = "True/" + kmsv1alpha1.ReasonReconcileSuccess
)

func notOK(reason string) string { return "False/" + reason }

func TestAliasReconcile(t *testing.T) {
	cases := map[string]struct {
		reason string
		alias  func(w *refWorld) *kmsv1alpha1.Alias
		others func(w *refWorld) []client.Object // besides Keys k1 and k2
		inKMS  string                            // key the alias points at in KMS before
		setup  func(w *refWorld)
		opts   func(o *Options)
		want   aliasOutcome
	}{
		"Create": {
			reason: "A new alias is created on the referenced Key's key: one DescribeKey to observe, one CreateAlias.",
			alias:  func(*refWorld) *kmsv1alpha1.Alias { return newAlias("a", "k1") },
			want: aliasOutcome{Ready: available, Synced: synced, Recorded: "k1", InKMS: "k1",
				Calls: []string{"DescribeKey", "CreateAlias"}, Events: []string{"Normal Created"}},
		},
		"InSync": {
			reason: "An alias already right costs one DescribeKey and no write.",
			alias:  func(w *refWorld) *kmsv1alpha1.Alias { return w.recorded(newAlias("a", "k1"), "k1") },
			inKMS:  "k1",
			want:   aliasOutcome{Ready: available, Synced: synced, Recorded: "k1", InKMS: "k1", Calls: []string{"DescribeKey"}},
		},
		"RetryAfterCrash": {
			reason: "An alias on the declared key with no record is our own create retried after a crash: recorded, not a conflict.",
			alias:  func(*refWorld) *kmsv1alpha1.Alias { return newAlias("a", "k1") },
			inKMS:  "k1",
			want:   aliasOutcome{Ready: available, Synced: synced, Recorded: "k1", InKMS: "k1", Calls: []string{"DescribeKey"}},
		},
		"CreateAlreadyDoneByRetry": {
			reason: "CreateAlias answered AlreadyExists (the SDK retried a request whose response was lost): one more look finds it on our key: success, not a conflict.",
			alias:  func(*refWorld) *kmsv1alpha1.Alias { return newAlias("a", "k1") },
			inKMS:  "k1",
			setup: func(w *refWorld) {
				// The first look misses the alias, as it did before the lost create.
				w.kms.Fail("DescribeKey", kmsclient.NewError("DescribeKey", kmsclient.NotFound, "NotFoundException", "alias not found"), 1)
			},
			want: aliasOutcome{Ready: available, Synced: synced, Recorded: "k1", InKMS: "k1",
				Calls: []string{"DescribeKey", "CreateAlias", "DescribeKey"}, Events: []string{"Normal Created"}},
		},
		"Retarget": {
			reason: "A changed targetKeyRef re-targets our alias with UpdateAlias.",
			alias:  func(w *refWorld) *kmsv1alpha1.Alias { return w.recorded(newAlias("a", "k2"), "k1") },
			inKMS:  "k1",
			want: aliasOutcome{Ready: available, Synced: synced, Recorded: "k2", InKMS: "k2",
				Calls: []string{"DescribeKey", "UpdateAlias"}, Events: []string{"Normal Updated"}},
		},
		"DriftRetargeted": {
			reason: "Our alias re-targeted outside Kubernetes is put back.",
			alias:  func(w *refWorld) *kmsv1alpha1.Alias { return w.recorded(newAlias("a", "k1"), "k1") },
			inKMS:  "k2",
			want: aliasOutcome{Ready: available, Synced: synced, Recorded: "k1", InKMS: "k1",
				Calls: []string{"DescribeKey", "UpdateAlias"}, Events: []string{"Normal Updated"}},
		},
		"DriftDeleted": {
			reason: "Our alias deleted outside Kubernetes is re-created.",
			alias:  func(w *refWorld) *kmsv1alpha1.Alias { return w.recorded(newAlias("a", "k1"), "k1") },
			want: aliasOutcome{Ready: available, Synced: synced, Recorded: "k1", InKMS: "k1",
				Calls: []string{"DescribeKey", "CreateAlias"}, Events: []string{"Normal Created"}},
		},
		"WaitingForMissingKey": {
			reason: "A Key not applied yet (or deleted) is a clear wait: no KMS call, no error backoff.",
			alias:  func(*refWorld) *kmsv1alpha1.Alias { return newAlias("a", "k3") },
			want: aliasOutcome{Ready: notOK(kmsv1alpha1.ReasonWaitingForKey), Synced: notOK(kmsv1alpha1.ReasonWaitingForKey),
				Events: []string{"Normal WaitingForKey"}},
		},
		"WaitingForKeyID": {
			reason: "A Key whose KMS key is not created yet is a wait too.",
			alias:  func(*refWorld) *kmsv1alpha1.Alias { return newAlias("a", "k3") },
			others: func(*refWorld) []client.Object {
				return []client.Object{&kmsv1alpha1.Key{ObjectMeta: metav1.ObjectMeta{Namespace: refNS, Name: "k3"}}}
			},
			want: aliasOutcome{Ready: notOK(kmsv1alpha1.ReasonWaitingForKey), Synced: notOK(kmsv1alpha1.ReasonWaitingForKey),
				Events: []string{"Normal WaitingForKey"}},
		},
		"ConflictExistsElsewhere": {
			reason: "An alias that exists on another key and that this object never created is reported, not taken over.",
			alias:  func(*refWorld) *kmsv1alpha1.Alias { return newAlias("a", "k1") },
			inKMS:  "unmanaged",
			want: aliasOutcome{Ready: notOK(kmsv1alpha1.ReasonConflict), Synced: notOK(kmsv1alpha1.ReasonConflict), InKMS: "unmanaged",
				Calls: []string{"DescribeKey"}, Events: []string{"Warning Conflict"}},
		},
		"AdoptWithFlag": {
			reason: "With --allow-adoption, an alias on a key this object may reference is taken over.",
			alias:  func(*refWorld) *kmsv1alpha1.Alias { return newAlias("a", "k1") },
			inKMS:  "k2",
			opts:   func(o *Options) { o.AllowAdoption = true },
			want: aliasOutcome{Ready: available, Synced: synced, Recorded: "k1", InKMS: "k1",
				Calls:  []string{"DescribeKey", "DescribeKey", "ListResourceTags", "UpdateAlias"},
				Events: []string{"Normal Adopted"}},
		},
		"AdoptionRefused": {
			reason: "Even with --allow-adoption, an alias on another namespace's key is not hijacked.",
			alias:  func(*refWorld) *kmsv1alpha1.Alias { return newAlias("a", "k1") },
			inKMS:  "other-ns",
			opts:   func(o *Options) { o.AllowAdoption = true },
			want: aliasOutcome{Ready: notOK(kmsv1alpha1.ReasonAdoptionRefused), Synced: notOK(kmsv1alpha1.ReasonAdoptionRefused),
				InKMS: "other-ns", Calls: []string{"DescribeKey", "DescribeKey", "ListResourceTags"}, Events: []string{"Warning AdoptionRefused"}},
		},
		"SameNameSecondObject": {
			reason: "A second Alias object declaring a name another object holds reports a conflict and never calls KMS.",
			alias:  func(*refWorld) *kmsv1alpha1.Alias { return newAlias("b", "k2") },
			others: func(w *refWorld) []client.Object { return []client.Object{w.recorded(newAlias("a", "k1"), "k1")} },
			inKMS:  "k1",
			want: aliasOutcome{Ready: notOK(kmsv1alpha1.ReasonConflict), Synced: notOK(kmsv1alpha1.ReasonConflict), InKMS: "k1",
				Events: []string{"Warning Conflict"}},
		},
		"RawKeyIDSameNamespace": {
			reason: "A raw id of a key owned in this namespace passes the tenancy check (DescribeKey, ListTags) once.",
			alias: func(w *refWorld) *kmsv1alpha1.Alias {
				a := newAlias("a", "")
				a.Spec.TargetKeyRef, a.Spec.TargetKeyID = nil, w.arns["k2"]
				return a
			},
			want: aliasOutcome{Ready: available, Synced: synced, Recorded: "k2", InKMS: "k2",
				Calls:  []string{"DescribeKey", "ListResourceTags", "DescribeKey", "CreateAlias"},
				Events: []string{"Normal Created"}},
		},
		"RawKeyIDOtherNamespace": {
			reason: "A raw id of another namespace's key is refused before any write.",
			alias: func(w *refWorld) *kmsv1alpha1.Alias {
				a := newAlias("a", "")
				a.Spec.TargetKeyRef, a.Spec.TargetKeyID = nil, w.ids["other-ns"]
				return a
			},
			want: aliasOutcome{Ready: notOK(kmsv1alpha1.ReasonReferenceRefused), Synced: notOK(kmsv1alpha1.ReasonReferenceRefused),
				Calls: []string{"DescribeKey", "ListResourceTags"}, Events: []string{"Warning ReferenceRefused"}},
		},
		"Throttled": {
			reason: "Throttling is retried with backoff (an error) and shown on Synced.",
			alias:  func(*refWorld) *kmsv1alpha1.Alias { return newAlias("a", "k1") },
			setup: func(w *refWorld) {
				w.kms.Fail("DescribeKey", kmsclient.NewError("DescribeKey", kmsclient.Throttled, "ThrottlingException", "slow down"), 1)
			},
			want: aliasOutcome{Err: true, Ready: notOK(kmsv1alpha1.ReasonThrottled), Synced: notOK(kmsv1alpha1.ReasonThrottled),
				Calls: []string{"DescribeKey"}, Events: []string{"Normal Throttled"}},
		},
		"Delete": {
			reason: "Deleting the object deletes our alias and releases the object.",
			alias: func(w *refWorld) *kmsv1alpha1.Alias {
				a := w.recorded(newAlias("a", "k1"), "k1")
				markDeleting(a)
				return a
			},
			inKMS: "k1",
			want:  aliasOutcome{Gone: true, Calls: []string{"DeleteAlias"}, Events: []string{"Normal Deleted"}},
		},
		"DeleteAlreadyGone": {
			reason: "An alias already gone counts as deleted.",
			alias: func(w *refWorld) *kmsv1alpha1.Alias {
				a := w.recorded(newAlias("a", "k1"), "k1")
				markDeleting(a)
				return a
			},
			want: aliasOutcome{Gone: true, Calls: []string{"DeleteAlias"}},
		},
		"DeleteNotOurs": {
			reason: "Deleting an object that only reported a conflict leaves the other owner's alias alone.",
			alias: func(*refWorld) *kmsv1alpha1.Alias {
				a := newAlias("a", "k1")
				markDeleting(a)
				return a
			},
			inKMS: "unmanaged",
			want:  aliasOutcome{Gone: true, InKMS: "unmanaged"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w := newRefWorld(t)
			if tc.opts != nil {
				tc.opts(&w.opts)
			}
			if tc.inKMS != "" {
				if err := w.kms.CreateAlias(context.Background(), testAlias, w.ids[tc.inKMS]); err != nil {
					t.Fatal(err)
				}
			}
			if tc.setup != nil {
				tc.setup(w)
			}
			a := tc.alias(w)
			objs := []client.Object{w.keyObject("k1"), w.keyObject("k2"), a}
			if tc.others != nil {
				objs = append(objs, tc.others(w)...)
			}
			got := reconcileAlias(t, w, newRefClient(t, objs...), a)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\n(-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

// TestAliasSameNameHandover plays the story of two objects declaring one
// name: the first creates it, the second waits in Conflict without fighting,
// and takes the name over once the first is deleted.
func TestAliasSameNameHandover(t *testing.T) {
	ctx := context.Background()
	w := newRefWorld(t)
	first, second := newAlias("a", "k1"), newAlias("b", "k2")
	first.CreationTimestamp = metav1.NewTime(time.Now().Add(-time.Hour))
	c := newRefClient(t, w.keyObject("k1"), w.keyObject("k2"), first, second)

	steps := []struct {
		reason string
		obj    *kmsv1alpha1.Alias
		delete bool
		want   aliasOutcome
	}{
		{
			reason: "The first object creates the alias.",
			obj:    first,
			want: aliasOutcome{Ready: available, Synced: synced, Recorded: "k1", InKMS: "k1",
				Calls: []string{"DescribeKey", "CreateAlias"}, Events: []string{"Normal Created"}},
		},
		{
			reason: "The second reports the conflict, with no KMS call.",
			obj:    second,
			want: aliasOutcome{Ready: notOK(kmsv1alpha1.ReasonConflict), Synced: notOK(kmsv1alpha1.ReasonConflict), InKMS: "k1",
				Events: []string{"Warning Conflict"}},
		},
		{
			reason: "At its resync the second still waits, without a new event.",
			obj:    second,
			want:   aliasOutcome{Ready: notOK(kmsv1alpha1.ReasonConflict), Synced: notOK(kmsv1alpha1.ReasonConflict), InKMS: "k1"},
		},
		{
			reason: "Deleting the first deletes its alias.",
			obj:    first,
			delete: true,
			want:   aliasOutcome{Gone: true, Calls: []string{"DeleteAlias"}, Events: []string{"Normal Deleted"}},
		},
		{
			reason: "The second then creates the alias on its own key.",
			obj:    second,
			want: aliasOutcome{Ready: available, Synced: synced, Recorded: "k2", InKMS: "k2",
				Calls: []string{"DescribeKey", "CreateAlias"}, Events: []string{"Normal Created"}},
		},
	}
	for i, s := range steps {
		if s.delete {
			if err := c.Delete(ctx, s.obj); err != nil {
				t.Fatal(err)
			}
		}
		if diff := cmp.Diff(s.want, reconcileAlias(t, w, c, s.obj)); diff != "" {
			t.Errorf("step %d: %s\n(-want +got):\n%s", i, s.reason, diff)
		}
	}
}

// TestAliasWaitsForKey applies an Alias before its Key: it waits, the Key's
// update wakes it through the field index, and it converges.
func TestAliasWaitsForKey(t *testing.T) {
	ctx := context.Background()
	w := newRefWorld(t)
	a := newAlias("a", "k1")
	key := w.keyObject("k1")
	key.Status = kmsv1alpha1.KeyStatus{}
	c := newRefClient(t, key, a, newAlias("unrelated", "k2"))

	waiting := aliasOutcome{Ready: notOK(kmsv1alpha1.ReasonWaitingForKey), Synced: notOK(kmsv1alpha1.ReasonWaitingForKey),
		Events: []string{"Normal WaitingForKey"}}
	if diff := cmp.Diff(waiting, reconcileAlias(t, w, c, a)); diff != "" {
		t.Errorf("before the Key has a key id (-want +got):\n%s", diff)
	}

	key.Status = w.keyObject("k1").Status
	if err := c.Status().Update(ctx, key); err != nil {
		t.Fatal(err)
	}
	want := []ctrl.Request{{NamespacedName: client.ObjectKeyFromObject(a)}}
	if diff := cmp.Diff(want, referrersOf(c, &kmsv1alpha1.AliasList{}, aliasTargetKeyRefField)(ctx, key)); diff != "" {
		t.Errorf("the Key event must wake exactly its Aliases (-want +got):\n%s", diff)
	}

	ready := aliasOutcome{Ready: available, Synced: synced, Recorded: "k1", InKMS: "k1",
		Calls: []string{"DescribeKey", "CreateAlias"}, Events: []string{"Normal Created"}}
	if diff := cmp.Diff(ready, reconcileAlias(t, w, c, a)); diff != "" {
		t.Errorf("once the Key has a key id (-want +got):\n%s", diff)
	}
}

// TestAliasMovesRegion re-targets an Alias to a Key of another region: the
// alias is created there first, then ours in the old region is deleted.
func TestAliasMovesRegion(t *testing.T) {
	ctx := context.Background()
	w := newRefWorld(t)
	west := w.provider.Fake("us-west-2")
	k, err := west.CreateKey(ctx, kmsclient.CreateKeyInput{Tags: ownerTags(refNS, "west", refCluster)})
	if err != nil {
		t.Fatal(err)
	}
	westKey := &kmsv1alpha1.Key{
		ObjectMeta: metav1.ObjectMeta{Namespace: refNS, Name: "west"},
		Spec:       kmsv1alpha1.KeySpec{Region: "us-west-2"},
		Status:     kmsv1alpha1.KeyStatus{KeyID: k.ID, ARN: k.ARN},
	}
	if err := w.kms.CreateAlias(ctx, testAlias, w.ids["k1"]); err != nil {
		t.Fatal(err)
	}
	a := w.recorded(newAlias("a", "west"), "k1")
	c := newRefClient(t, w.keyObject("k1"), westKey, a)
	west.ResetCalls()

	got := reconcileAlias(t, w, c, a)
	want := aliasOutcome{Ready: available, Synced: synced, Recorded: w.sym(k.ID), // each region's fake numbers its keys from 1
		Calls: []string{"DeleteAlias"}, Events: []string{"Normal Created", "Normal Deleted"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("old region (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"DescribeKey", "CreateAlias"}, west.Calls()); diff != "" {
		t.Errorf("new region calls (-want +got):\n%s", diff)
	}
	if in, err := west.GetAlias(ctx, testAlias); err != nil || in.TargetKeyID != k.ID {
		t.Errorf("want %s on %s in us-west-2, got %+v, %v", testAlias, k.ID, in, err)
	}
}
