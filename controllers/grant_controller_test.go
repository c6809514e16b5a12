package controllers

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

const (
	testGrantee   = "arn:aws:iam::111122223333:role/app"
	testGrantName = "kms-operator-uid-grant"
)

// newGrant lets testGrantee Encrypt and Decrypt (listed out of order) with
// the Key named ref, under an encryption context constraint.
func newGrant(ref string) *kmsv1alpha1.Grant {
	return &kmsv1alpha1.Grant{
		ObjectMeta: metav1.ObjectMeta{Namespace: refNS, Name: "g", UID: "uid-grant", Generation: 1},
		Spec: kmsv1alpha1.GrantSpec{
			KeyRef:           &kmsv1alpha1.LocalObjectReference{Name: ref},
			GranteePrincipal: testGrantee,
			Operations:       []kmsv1alpha1.GrantOperation{"Encrypt", "Decrypt"},
			Constraints:      &kmsv1alpha1.GrantConstraints{EncryptionContextSubset: map[string]string{"app": "web"}},
		},
	}
}

// seedGrant creates a grant named testGrantName with operations ops on key sym
// and remembers its id as w.grants[label].
func (w *refWorld) seedGrant(t *testing.T, label, sym string, ops ...string) {
	t.Helper()
	id, err := w.kms.CreateGrant(context.Background(), kmsclient.GrantInput{
		KeyID: w.ids[sym], Name: testGrantName, GranteePrincipal: testGrantee, Operations: ops,
		EncryptionContextSubset: map[string]string{"app": "web"},
	})
	if err != nil {
		t.Fatal(err)
	}
	w.grants[label] = id
}

// grantOutcome is what a reconcile left behind.
type grantOutcome struct {
	Err      bool
	Ready    string
	Synced   string
	Recorded string              // "key:grant" labels of status.keyID and status.grantID
	InKMS    map[string][]string // grants on k1 and k2 as "name ops"
	Gone     bool
	Calls    []string
	Events   []string
}

func reconcileGrant(t *testing.T, w *refWorld, c client.Client, g *kmsv1alpha1.Grant) grantOutcome {
	t.Helper()
	ctx := context.Background()
	rec := events.NewFakeRecorder(20)
	r := &GrantReconciler{Options: w.opts, client: c, recorder: rec}
	w.kms.ResetCalls()
	_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(g)})
	got := grantOutcome{Err: err != nil, Calls: w.kms.Calls(), Events: drainEvents(rec), InKMS: map[string][]string{}}
	var after kmsv1alpha1.Grant
	if err := c.Get(ctx, client.ObjectKeyFromObject(g), &after); apierrors.IsNotFound(err) {
		got.Gone = true
	} else if err != nil {
		t.Fatal(err)
	}
	got.Ready = condition(after.Status.Conditions, kmsv1alpha1.ConditionReady)
	got.Synced = condition(after.Status.Conditions, kmsv1alpha1.ConditionSynced)
	if after.Status.GrantID != "" {
		got.Recorded = w.sym(after.Status.KeyID) + ":" + w.grantLabel(after.Status.GrantID)
	}
	for _, sym := range []string{"k1", "k2"} {
		grants, err := w.kms.ListGrants(ctx, w.ids[sym])
		if err != nil {
			t.Fatal(err)
		}
		for _, gr := range grants {
			got.InKMS[sym] = append(got.InKMS[sym], w.grantLabel(gr.GrantID)+" "+strings.Join(gr.Operations, ","))
		}
	}
	return got
}

// grantLabel names a grant id by its seed label, or "new" for one the
// reconciler created.
func (w *refWorld) grantLabel(id string) string {
	for label, seeded := range w.grants {
		if seeded == id {
			return label
		}
	}
	return "new"
}

func TestGrantReconcile(t *testing.T) {
	cases := map[string]struct {
		reason string
		grant  func(w *refWorld) *kmsv1alpha1.Grant
		setup  func(t *testing.T, w *refWorld)
		opts   func(o *Options)
		want   grantOutcome
	}{
		"Create": {
			reason: "A new grant is created with the derived name; grants of others on the key are left alone.",
			grant:  func(*refWorld) *kmsv1alpha1.Grant { return newGrant("k1") },
			setup: func(t *testing.T, w *refWorld) {
				id, err := w.kms.CreateGrant(context.Background(), kmsclient.GrantInput{
					KeyID: w.ids["k1"], Name: "someone-else", GranteePrincipal: testGrantee, Operations: []string{"Decrypt"},
				})
				if err != nil {
					t.Fatal(err)
				}
				w.grants["foreign"] = id
			},
			want: grantOutcome{Ready: available, Synced: synced, Recorded: "k1:new",
				InKMS: map[string][]string{"k1": {"foreign Decrypt", "new Decrypt,Encrypt"}},
				Calls: []string{"ListGrants", "CreateGrant"}, Events: []string{"Normal Created"}},
		},
		"NoOpWhenMatching": {
			reason: "A grant matching the spec (operations in another order) costs one ListGrants and no write.",
			grant: func(w *refWorld) *kmsv1alpha1.Grant {
				g := newGrant("k1")
				g.Status.KeyID, g.Status.GrantID = w.ids["k1"], w.grants["current"]
				return g
			},
			setup: func(t *testing.T, w *refWorld) { w.seedGrant(t, "current", "k1", "Decrypt", "Encrypt") },
			want: grantOutcome{Ready: available, Synced: synced, Recorded: "k1:current",
				InKMS: map[string][]string{"k1": {"current Decrypt,Encrypt"}}, Calls: []string{"ListGrants"}},
		},
		"RecordLostAfterCreate": {
			reason: "A grant with our name and the spec's parameters but no record (crash after CreateGrant) is found, not duplicated.",
			grant:  func(*refWorld) *kmsv1alpha1.Grant { return newGrant("k1") },
			setup:  func(t *testing.T, w *refWorld) { w.seedGrant(t, "current", "k1", "Decrypt", "Encrypt") },
			want: grantOutcome{Ready: available, Synced: synced, Recorded: "k1:current",
				InKMS: map[string][]string{"k1": {"current Decrypt,Encrypt"}}, Calls: []string{"ListGrants"}},
		},
		"ReplaceOnChange": {
			reason: "A spec change creates the new grant first, then revokes the old one.",
			grant: func(w *refWorld) *kmsv1alpha1.Grant {
				g := newGrant("k1")
				g.Status.KeyID, g.Status.GrantID = w.ids["k1"], w.grants["old"]
				return g
			},
			setup: func(t *testing.T, w *refWorld) { w.seedGrant(t, "old", "k1", "Decrypt") },
			want: grantOutcome{Ready: available, Synced: synced, Recorded: "k1:new",
				InKMS: map[string][]string{"k1": {"new Decrypt,Encrypt"}},
				Calls: []string{"ListGrants", "CreateGrant", "RevokeGrant"}, Events: []string{"Normal Created", "Normal Revoked"}},
		},
		"ReplaceBeforeListed": {
			reason: "A spec change made before KMS lists the recorded grant revokes that grant by id after creating the new one, instead of leaving it alive until a later list shows it.",
			grant: func(w *refWorld) *kmsv1alpha1.Grant {
				g := newGrant("k1")
				g.Status.KeyID, g.Status.GrantID = w.ids["k1"], w.grants["old"]
				g.Generation, g.Status.ObservedGeneration = 2, 1
				return g
			},
			setup: func(t *testing.T, w *refWorld) {
				w.seedGrant(t, "old", "k1", "Decrypt")
				w.kms.HideGrant(w.grants["old"], true)
			},
			want: grantOutcome{Ready: available, Synced: synced, Recorded: "k1:new",
				InKMS: map[string][]string{"k1": {"new Decrypt,Encrypt"}},
				Calls: []string{"ListGrants", "CreateGrant", "RevokeGrant"}, Events: []string{"Normal Created", "Normal Revoked"}},
		},
		"CrashBetweenCreateAndRevoke": {
			reason: "After a crash between creating the new grant and revoking the old, the old one is revoked and the new one kept.",
			grant: func(w *refWorld) *kmsv1alpha1.Grant {
				g := newGrant("k1")
				g.Status.KeyID, g.Status.GrantID = w.ids["k1"], w.grants["old"]
				return g
			},
			setup: func(t *testing.T, w *refWorld) {
				w.seedGrant(t, "old", "k1", "Decrypt")
				w.seedGrant(t, "current", "k1", "Decrypt", "Encrypt")
			},
			want: grantOutcome{Ready: available, Synced: synced, Recorded: "k1:current",
				InKMS: map[string][]string{"k1": {"current Decrypt,Encrypt"}},
				Calls: []string{"ListGrants", "RevokeGrant"}, Events: []string{"Normal Revoked"}},
		},
		"RevokeOfOldFails": {
			reason: "When revoking the old grant fails, the record keeps the old grant so the next attempt still finds it.",
			grant: func(w *refWorld) *kmsv1alpha1.Grant {
				g := newGrant("k1")
				g.Status.KeyID, g.Status.GrantID = w.ids["k1"], w.grants["old"]
				return g
			},
			setup: func(t *testing.T, w *refWorld) {
				w.seedGrant(t, "old", "k1", "Decrypt")
				w.kms.Fail("RevokeGrant", kmsclient.NewError("RevokeGrant", kmsclient.Throttled, "ThrottlingException", "slow down"), 1)
			},
			want: grantOutcome{Err: true, Ready: notOK(kmsv1alpha1.ReasonThrottled), Synced: notOK(kmsv1alpha1.ReasonThrottled),
				Recorded: "k1:old", InKMS: map[string][]string{"k1": {"new Decrypt,Encrypt", "old Decrypt"}},
				Calls:  []string{"ListGrants", "CreateGrant", "RevokeGrant"},
				Events: []string{"Normal Created", "Normal Throttled"}},
		},
		"KeyChanged": {
			reason: "A reference moved to another key gets the grant there first, then the old key's grant revoked.",
			grant: func(w *refWorld) *kmsv1alpha1.Grant {
				g := newGrant("k2")
				g.Status.KeyID, g.Status.GrantID = w.ids["k1"], w.grants["old"]
				return g
			},
			setup: func(t *testing.T, w *refWorld) { w.seedGrant(t, "old", "k1", "Decrypt", "Encrypt") },
			want: grantOutcome{Ready: available, Synced: synced, Recorded: "k2:new",
				InKMS: map[string][]string{"k2": {"new Decrypt,Encrypt"}},
				Calls: []string{"ListGrants", "CreateGrant", "RevokeGrant"}, Events: []string{"Normal Created", "Normal Revoked"}},
		},
		"DriftRecreate": {
			reason: "A grant revoked outside Kubernetes is re-created; the spec did not change, so the missing grant is not revoked again.",
			grant: func(w *refWorld) *kmsv1alpha1.Grant {
				g := newGrant("k1")
				g.Status.KeyID, g.Status.GrantID = w.ids["k1"], "revoked-outside"
				g.Status.ObservedGeneration = g.Generation
				return g
			},
			want: grantOutcome{Ready: available, Synced: synced, Recorded: "k1:new",
				InKMS: map[string][]string{"k1": {"new Decrypt,Encrypt"}},
				Calls: []string{"ListGrants", "CreateGrant"}, Events: []string{"Normal Created"}},
		},
		"WaitingForKey": {
			reason: "A Key not applied yet is a wait with no KMS call.",
			grant:  func(*refWorld) *kmsv1alpha1.Grant { return newGrant("k3") },
			want: grantOutcome{Ready: notOK(kmsv1alpha1.ReasonWaitingForKey), Synced: notOK(kmsv1alpha1.ReasonWaitingForKey),
				InKMS: map[string][]string{}, Events: []string{"Normal WaitingForKey"}},
		},
		"RawKeyIDOtherNamespace": {
			reason: "A raw id of another namespace's key is refused: no grant is created.",
			grant: func(w *refWorld) *kmsv1alpha1.Grant {
				g := newGrant("")
				g.Spec.KeyRef, g.Spec.KeyID = nil, w.ids["other-ns"]
				return g
			},
			want: grantOutcome{Ready: notOK(kmsv1alpha1.ReasonReferenceRefused), Synced: notOK(kmsv1alpha1.ReasonReferenceRefused),
				InKMS: map[string][]string{}, Calls: []string{"DescribeKey", "ListResourceTags"}, Events: []string{"Warning ReferenceRefused"}},
		},
		"RawKeyIDUnmanagedWithFlag": {
			reason: "With --allow-unmanaged-key-references a raw id of an unmanaged key gets its grant.",
			grant: func(w *refWorld) *kmsv1alpha1.Grant {
				g := newGrant("")
				g.Spec.KeyRef, g.Spec.KeyID = nil, w.ids["unmanaged"]
				return g
			},
			opts: func(o *Options) { o.AllowUnmanagedKeyReferences = true },
			want: grantOutcome{Ready: available, Synced: synced, Recorded: "unmanaged:new", InKMS: map[string][]string{},
				Calls:  []string{"DescribeKey", "ListResourceTags", "ListGrants", "CreateGrant"},
				Events: []string{"Normal Created"}},
		},
		"Revoke": {
			reason: "Deleting the object revokes its recorded grant by id (the default), then a list shows none of ours: released.",
			grant: func(w *refWorld) *kmsv1alpha1.Grant {
				g := newGrant("k1")
				g.Status.KeyID, g.Status.GrantID = w.ids["k1"], w.grants["current"]
				markDeleting(g)
				return g
			},
			setup: func(t *testing.T, w *refWorld) { w.seedGrant(t, "current", "k1", "Decrypt", "Encrypt") },
			want: grantOutcome{Gone: true, InKMS: map[string][]string{},
				Calls: []string{"RevokeGrant", "ListGrants"}, Events: []string{"Normal Revoked"}},
		},
		"Retire": {
			reason: "onDelete Retire retires the grant instead.",
			grant: func(w *refWorld) *kmsv1alpha1.Grant {
				g := newGrant("k1")
				g.Spec.OnDelete = kmsv1alpha1.GrantOnDeleteRetire
				g.Status.KeyID, g.Status.GrantID = w.ids["k1"], w.grants["current"]
				markDeleting(g)
				return g
			},
			setup: func(t *testing.T, w *refWorld) { w.seedGrant(t, "current", "k1", "Decrypt", "Encrypt") },
			want: grantOutcome{Gone: true, InKMS: map[string][]string{},
				Calls: []string{"RetireGrant", "ListGrants"}, Events: []string{"Normal Retired"}},
		},
		"DeleteAlreadyGone": {
			reason: "A grant already gone counts as removed.",
			grant: func(w *refWorld) *kmsv1alpha1.Grant {
				g := newGrant("k1")
				g.Status.KeyID, g.Status.GrantID = w.ids["k1"], "revoked-outside"
				markDeleting(g)
				return g
			},
			want: grantOutcome{Gone: true, InKMS: map[string][]string{}, Calls: []string{"RevokeGrant", "ListGrants"}},
		},
		"DeleteKeyGone": {
			reason: "A key that no longer exists took its grants with it.",
			grant: func(*refWorld) *kmsv1alpha1.Grant {
				g := newGrant("k1")
				g.Status.KeyID, g.Status.GrantID = "00000000-0000-0000-0000-000000000000", "gone"
				markDeleting(g)
				return g
			},
			want: grantOutcome{Gone: true, InKMS: map[string][]string{}, Calls: []string{"RevokeGrant", "ListGrants"}},
		},
		"DeleteKeyPendingDeletion": {
			reason: "A key pending deletion refusing the revoke is confirmed with DescribeKey and counts as done.",
			grant: func(w *refWorld) *kmsv1alpha1.Grant {
				g := newGrant("k1")
				g.Status.KeyID, g.Status.GrantID = w.ids["k1"], w.grants["current"]
				markDeleting(g)
				return g
			},
			setup: func(t *testing.T, w *refWorld) {
				w.seedGrant(t, "current", "k1", "Decrypt", "Encrypt")
				if _, err := w.kms.ScheduleDeletion(context.Background(), w.ids["k1"], 7); err != nil {
					t.Fatal(err)
				}
				w.kms.Fail("RevokeGrant", kmsclient.NewError("RevokeGrant", kmsclient.InvalidState, "KMSInvalidStateException", "pending deletion"), 1)
			},
			want: grantOutcome{Gone: true, InKMS: map[string][]string{"k1": {"current Decrypt,Encrypt"}},
				Calls: []string{"RevokeGrant", "DescribeKey"}},
		},
		"DeleteKeyDisabled": {
			reason: "A disabled key refusing the revoke is not gone: the grant would work again, so the object keeps its finalizer.",
			grant: func(w *refWorld) *kmsv1alpha1.Grant {
				g := newGrant("k1")
				g.Status.KeyID, g.Status.GrantID = w.ids["k1"], w.grants["current"]
				markDeleting(g)
				return g
			},
			setup: func(t *testing.T, w *refWorld) {
				w.seedGrant(t, "current", "k1", "Decrypt", "Encrypt")
				w.kms.Fail("RevokeGrant", kmsclient.NewError("RevokeGrant", kmsclient.InvalidState, "DisabledException", "disabled"), 1)
			},
			want: grantOutcome{Ready: notOK(kmsv1alpha1.ReasonInvalidKeyState), Synced: notOK(kmsv1alpha1.ReasonInvalidKeyState),
				Recorded: "k1:current", InKMS: map[string][]string{"k1": {"current Decrypt,Encrypt"}},
				Calls: []string{"RevokeGrant", "DescribeKey"}, Events: []string{"Warning InvalidKeyState"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w := newRefWorld(t)
			if tc.opts != nil {
				tc.opts(&w.opts)
			}
			if tc.setup != nil {
				tc.setup(t, w)
			}
			g := tc.grant(w)
			c := newRefClient(t, w.keyObject("k1"), w.keyObject("k2"), g)
			got := reconcileGrant(t, w, c, g)
			for _, grants := range got.InKMS {
				slices.Sort(grants)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\n(-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

// TestGrantCreateBeforeRevoke checks, over a replacement, that the grantee
// holds a matching grant at every moment: CreateGrant comes before RevokeGrant.
func TestGrantCreateBeforeRevoke(t *testing.T) {
	w := newRefWorld(t)
	w.seedGrant(t, "old", "k1", "Decrypt")
	g := newGrant("k1")
	g.Status.KeyID, g.Status.GrantID = w.ids["k1"], w.grants["old"]
	got := reconcileGrant(t, w, newRefClient(t, w.keyObject("k1"), g), g)
	if create, revoke := slices.Index(got.Calls, "CreateGrant"), slices.Index(got.Calls, "RevokeGrant"); create < 0 || revoke < create {
		t.Errorf("want CreateGrant before RevokeGrant, got calls %v", got.Calls)
	}
}

// TestGrantDeleteUsesRecordedRegion: a Grant whose Key object is already gone
// still revokes its grant in the key's region, which status.keyARN records.
func TestGrantDeleteUsesRecordedRegion(t *testing.T) {
	ctx := context.Background()
	w := newRefWorld(t)
	eu := w.provider.Fake("eu-west-1")
	key, err := eu.CreateKey(ctx, kmsclient.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	g := newGrant("gone") // the Key object no longer exists
	gid, err := eu.CreateGrant(ctx, kmsclient.GrantInput{KeyID: key.ID, Name: "kms-operator-" + string(g.UID),
		GranteePrincipal: testGrantee, Operations: []string{"Decrypt", "Encrypt"}})
	if err != nil {
		t.Fatal(err)
	}
	g.Status.GrantID, g.Status.KeyID, g.Status.KeyARN = gid, key.ID, key.ARN
	markDeleting(g)
	got := reconcileGrant(t, w, newRefClient(t, g), g)
	if !got.Gone || got.Err {
		t.Fatalf("the Grant was not released: %+v", got)
	}
	if left, err := eu.ListGrants(ctx, key.ID); err != nil || len(left) != 0 {
		t.Errorf("grants left in eu-west-1: %v %v; want the recorded region's grant revoked", left, err)
	}
	if calls := got.Calls; len(calls) != 0 {
		t.Errorf("calls in the default region: %v, want none", calls)
	}
}
