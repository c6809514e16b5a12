package controllers

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// Behaviours of real KMS that emulators hide (/work/shared/docs/kms-notes.md,
// "Real KMS is eventually consistent and rewrites identities"), modelled by
// the fake's test hooks. Each case failed on the operator before it handled
// them.

const freshRoleID = "AROAEXAMPLEUNIQUEID01"

// grantScene is one Grant on k1 of a refWorld, reconciled through its steps.
type grantScene struct {
	t *testing.T
	w *refWorld
	c client.Client
	g *kmsv1alpha1.Grant
}

func newGrantScene(t *testing.T, mutate func(*kmsv1alpha1.Grant)) *grantScene {
	w := newRefWorld(t)
	g := newGrant("k1")
	if mutate != nil {
		mutate(g)
	}
	return &grantScene{t: t, w: w, c: newRefClient(t, w.keyObject("k1"), g), g: g}
}

func (s *grantScene) reconcile() (ctrl.Result, error) {
	r := &GrantReconciler{Options: s.w.opts, client: s.c, recorder: events.NewFakeRecorder(20)}
	return r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(s.g)})
}

func (s *grantScene) get() *kmsv1alpha1.Grant {
	s.t.Helper()
	g := &kmsv1alpha1.Grant{}
	if err := s.c.Get(context.Background(), client.ObjectKeyFromObject(s.g), g); err != nil {
		return nil
	}
	return g
}

// grantsInKMS is the ids of the grants really on k1.
func (s *grantScene) grantsInKMS() []string {
	var ids []string
	for _, g := range s.w.kms.Grants(s.w.ids["k1"]) {
		ids = append(ids, g.GrantID)
	}
	return ids
}

func (s *grantScene) delete() {
	s.t.Helper()
	if err := s.c.Delete(context.Background(), s.get()); err != nil {
		s.t.Fatal(err)
	}
}

func TestGrantAgainstRealKMS(t *testing.T) {
	cases := map[string]struct {
		reason string
		run    func(t *testing.T, s *grantScene) any
		want   any
	}{
		"PrincipalShownAsUniqueID": {
			reason: "KMS showing a new role as its unique id is not a difference: the grant is kept, nothing revoked, and looked at again soon.",
			run: func(t *testing.T, s *grantScene) any {
				mustGrant(t, s)
				id := s.get().Status.GrantID
				s.w.kms.ShowPrincipalAs(testGrantee, freshRoleID)
				s.w.kms.ResetCalls()
				res, err := s.reconcile()
				return []any{err, s.w.kms.Calls(), res.RequeueAfter, s.grantsInKMS(), s.get().Status.GrantID == id}
			},
			want: []any{nil, []string{"ListGrants"}, principalRecheck, []string{"0000000000000000000000000000000000000000000000000000000000000006"}, true},
		},
		"NewGrantNotListedYet": {
			reason: "A grant not listed yet is asked for again with the same name: KMS answers the same id, which is kept, not revoked.",
			run: func(t *testing.T, s *grantScene) any {
				mustGrant(t, s)
				id := s.get().Status.GrantID
				s.w.kms.HideGrant(id, true)
				s.w.kms.ResetCalls()
				_, err := s.reconcile()
				return []any{err, s.w.kms.Calls(), s.grantsInKMS(), s.get().Status.GrantID == id}
			},
			want: []any{nil, []string{"ListGrants", "CreateGrant"}, []string{"0000000000000000000000000000000000000000000000000000000000000006"}, true},
		},
		"DeleteRevokesUnlistedGrant": {
			reason: "Deleting a Grant whose grant is not listed yet revokes it by its recorded id: no grant is left alive.",
			run: func(t *testing.T, s *grantScene) any {
				mustGrant(t, s)
				s.w.kms.HideGrant(s.get().Status.GrantID, true)
				s.delete()
				_, err := s.reconcile()
				return []any{err, s.grantsInKMS(), s.get() == nil}
			},
			want: []any{nil, []string(nil), true},
		},
		"DeleteWaitsWhileListed": {
			reason: "KMS lists a revoked grant for a while: the finalizer stays until a list shows none of ours.",
			run: func(t *testing.T, s *grantScene) any {
				mustGrant(t, s)
				s.w.kms.LingerRevoked(true)
				s.delete()
				_, errWhileListed := s.reconcile()
				kept := s.get() != nil
				s.w.kms.LingerRevoked(false)
				_, err := s.reconcile()
				return []any{isPropagating(errWhileListed), kept, err, s.get() == nil, s.grantsInKMS()}
			},
			want: []any{true, true, nil, true, []string(nil)},
		},
		"DeleteAfterLostRecord": {
			reason: "A grant made before a crash lost its record (and not listed yet) is found by an idempotent CreateGrant and revoked.",
			run: func(t *testing.T, s *grantScene) any {
				id, err := s.w.kms.CreateGrant(context.Background(), grantInput(s.g, s.w.ids["k1"]))
				if err != nil {
					t.Fatal(err)
				}
				s.w.kms.HideGrant(id, true)
				g := s.get()
				g.Finalizers = []string{kmsv1alpha1.Finalizer}
				if err := s.c.Update(context.Background(), g); err != nil {
					t.Fatal(err)
				}
				s.delete()
				_, err = s.reconcile()
				return []any{err, s.grantsInKMS(), s.get() == nil}
			},
			want: []any{nil, []string(nil), true},
		},
		"FreshPrincipal": {
			reason: "InvalidArnException for a role created seconds ago is a wait while IAM propagates it, not an invalid spec.",
			run: func(t *testing.T, s *grantScene) any {
				s.w.kms.Fail("CreateGrant", kmsclient.CodeError("CreateGrant", "InvalidArnException", "ARN is not valid"), 1)
				_, err := s.reconcile()
				return []any{isPropagating(err), condition(s.get().Status.Conditions, kmsv1alpha1.ConditionSynced)}
			},
			want: []any{true, "False/Propagating"},
		},
		"OtherToolsGrantOfTheSameName": {
			reason: "Another tool's grant with the user-chosen name but other parameters is not ours: it survives.",
			run: func(t *testing.T, s *grantScene) any {
				other, err := s.w.kms.CreateGrant(context.Background(), kmsclient.GrantInput{
					KeyID: s.w.ids["k1"], Name: "shared", GranteePrincipal: testGrantee, Operations: []string{"Sign"}})
				if err != nil {
					t.Fatal(err)
				}
				mustGrant(t, s)
				return slices.Contains(s.grantsInKMS(), other)
			},
			want: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := newGrantScene(t, nil)
			if name == "OtherToolsGrantOfTheSameName" {
				s = newGrantScene(t, func(g *kmsv1alpha1.Grant) { g.Spec.Name = "shared" })
			}
			if diff := cmp.Diff(tc.want, tc.run(t, s)); diff != "" {
				t.Errorf("%s\n(-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

// mustGrant reconciles the scene's Grant to Ready.
func mustGrant(t *testing.T, s *grantScene) {
	t.Helper()
	if _, err := s.reconcile(); err != nil {
		t.Fatal(err)
	}
	if got := condition(s.get().Status.Conditions, kmsv1alpha1.ConditionReady); got != available {
		t.Fatalf("grant not Ready: %s", got)
	}
}

func TestKeyAgainstRealKMS(t *testing.T) {
	lost := kmsclient.NewError("CreateKey", kmsclient.Transient, "", "read tcp: connection reset by peer")
	cases := map[string]struct {
		reason string
		run    func(t *testing.T, e *keyEnv) any
		want   any
	}{
		"LostCreateNotListedYet": {
			reason: "After a lost CreateKey answer, a key the tagging API does not show yet is waited for, never duplicated.",
			run: func(t *testing.T, e *keyEnv) any {
				e.kms.LoseResponse("CreateKey", lost, 1)
				if _, err := e.reconcile(); err == nil {
					t.Fatal("want the lost answer reported")
				}
				made := e.kms.Keys()[0].ID
				e.kms.HideFromTagSearch(made, true)
				e.restart()
				_, errWait := e.reconcile()
				e.kms.HideFromTagSearch(made, false)
				e.mustReconcile()
				return []any{isPropagating(errWait), len(e.kms.Keys()), e.get().Status.KeyID == made}
			},
			want: []any{true, 1, true},
		},
		"RebindSkipsKeysPendingDeletion": {
			reason: "A re-applied Key does not rebind the key of a deleted incarnation that is pending deletion: it creates a new one.",
			run: func(t *testing.T, e *keyEnv) any {
				old := e.create()
				if _, err := e.kms.ScheduleDeletion(context.Background(), old, 7); err != nil {
					t.Fatal(err)
				}
				k := e.get()
				k.Finalizers, k.Annotations = nil, nil
				if err := e.c.Update(context.Background(), k); err != nil {
					t.Fatal(err)
				}
				e.setStatus(kmsv1alpha1.KeyStatus{})
				e.restart()
				e.mustReconcile()
				return []any{len(e.kms.Keys()), e.get().Status.KeyID != old}
			},
			want: []any{2, true},
		},
		"OnDemandRotationOnce": {
			reason: "After a lost RotateKeyOnDemand answer, the retry finds the rotation in ListKeyRotations and does not rotate twice.",
			run: func(t *testing.T, e *keyEnv) any {
				e.create()
				e.updateSpec(withOnDemand("r1"))
				e.kms.LoseResponse("RotateKeyOnDemand", kmsclient.NewError("RotateKeyOnDemand", kmsclient.Transient, "", "timeout"), 1)
				if _, err := e.reconcile(); err == nil {
					t.Fatal("want the lost answer reported")
				}
				e.restart()
				e.mustReconcile()
				return []any{e.kms.Count("RotateKeyOnDemand"), e.get().Status.Rotation.LastOnDemandRequest}
			},
			want: []any{1, "r1"},
		},
		"PendingReplicaDeletion": {
			reason: "A multi-Region primary with replicas waits in PendingReplicaDeletion with no date: none is made up, the object is released.",
			run: func(t *testing.T, e *keyEnv) any {
				id := e.create()
				e.kms.SetHasReplicas(id)
				if err := e.c.Delete(context.Background(), e.get()); err != nil {
					t.Fatal(err)
				}
				e.mustReconcile()
				return []any{e.kmsKey(id).State, e.kmsKey(id).DeletionDate == nil, e.get() == nil, drainEvents(e.rec)}
			},
			want: []any{kmsclient.StatePendingReplicaDeletion, true, true, []string{"Normal DeletionScheduled"}},
		},
		"PolicyInChinaPartition": {
			reason: "In aws-cn, KMS returns a bare account id as arn:aws-cn:iam::...:root: no difference, so no PutKeyPolicy at every resync.",
			run: func(t *testing.T, e *keyEnv) any {
				e.opts.KMS = e.provider
				e.updateSpec(func(k *kmsv1alpha1.Key) {
					k.Spec.Region = "cn-north-1"
					k.Spec.Policy = `{"Version":"2012-10-17","Statement":[{"Sid":"Root","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}]}`
				})
				cn := e.provider.Fake("cn-north-1")
				e.finishCreation(e.mustReconcile())
				if err := cn.PutKeyPolicy(context.Background(), e.get().Status.KeyID,
					`{"Version":"2012-10-17","Statement":[{"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws-cn:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`, false); err != nil {
					t.Fatal(err)
				}
				cn.ResetCalls()
				e.mustReconcile()
				return cn.Count("PutKeyPolicy")
			},
			want: 0,
		},
		"KeyIDOfAnotherRegion": {
			reason: "spec.keyID given as an ARN of another region is adopted in that region, not looked for in the default one.",
			run: func(t *testing.T, e *keyEnv) any {
				k, err := e.provider.Fake("eu-west-1").CreateKey(context.Background(), kmsclient.CreateKeyInput{})
				if err != nil {
					t.Fatal(err)
				}
				e.opts.AllowAdoption = true
				e.restart()
				e.updateSpec(withKeyID(k.ARN))
				e.mustReconcile()
				return []any{e.get().Status.KeyID == k.ID, condition(e.get().Status.Conditions, kmsv1alpha1.ConditionReady)}
			},
			want: []any{true, "True/Available"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := newKeyEnv(t, newKey(withRotation(365)))
			if diff := cmp.Diff(tc.want, tc.run(t, e)); diff != "" {
				t.Errorf("%s\n(-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

// TestOwnershipCheckedOnEveryObservation: two namespaces observing one
// unmanaged key both switch to Manage; the first claims it, the second is
// refused, and keeps being refused, instead of the two fighting over its tags.
func TestOwnershipCheckedOnEveryObservation(t *testing.T) {
	w := newRefWorld(t)
	w.opts.AllowAdoption = true
	observer := func(ns string) *kmsv1alpha1.Key {
		return &kmsv1alpha1.Key{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shared", UID: types.UID("uid-shared-" + ns), Generation: 1},
			Spec: kmsv1alpha1.KeySpec{KeyID: w.ids["unmanaged"], ManagementPolicy: kmsv1alpha1.ManagementPolicyObserve,
				KeySpec: kmsv1alpha1.KeySpecSymmetricDefault, Origin: kmsv1alpha1.OriginAWSKMS},
		}
	}
	a, b := observer("team-a"), observer("team-b")
	c := newRefClient(t, a, b)
	r := &KeyReconciler{Options: w.opts, client: c, recorder: events.NewFakeRecorder(50), memory: newKeyMemory()}
	reconcile := func(k *kmsv1alpha1.Key) string {
		_, _ = r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(k)})
		got := &kmsv1alpha1.Key{}
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(k), got); err != nil {
			t.Fatal(err)
		}
		return condition(got.Status.Conditions, kmsv1alpha1.ConditionReady)
	}
	manage := func(k *kmsv1alpha1.Key) {
		got := &kmsv1alpha1.Key{}
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(k), got); err != nil {
			t.Fatal(err)
		}
		got.Spec.ManagementPolicy = kmsv1alpha1.ManagementPolicyManage
		got.Generation++
		if err := c.Update(context.Background(), got); err != nil {
			t.Fatal(err)
		}
	}
	got := []string{reconcile(a), reconcile(b)}
	manage(a)
	manage(b)
	got = append(got, reconcile(a), reconcile(b), reconcile(a), reconcile(b))
	tags, _ := w.kms.ListTags(context.Background(), w.ids["unmanaged"])
	got = append(got, tags[kmsv1alpha1.TagOwnerNS])
	want := []string{"True/Available", "True/Available", "True/Available", "False/AdoptionRefused", "True/Available", "False/AdoptionRefused", "team-a"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Ready of a, b: observed, a manages, b manages, again; then the key's owner namespace (-want +got):\n%s", diff)
	}
}

// TestReferenceToObservedKey: a keyRef to a Key that only observes its key
// reaches a key the operator does not manage: refused without
// --allow-unmanaged-key-references, like a raw id of such a key.
func TestReferenceToObservedKey(t *testing.T) {
	for _, allow := range []bool{false, true} {
		w := newRefWorld(t)
		w.opts.AllowUnmanagedKeyReferences = allow
		key := w.keyObject("k1")
		key.Spec.ManagementPolicy = kmsv1alpha1.ManagementPolicyObserve
		_, err := targetOfKeyObject(context.Background(), newRefClient(t, key), w.opts, refNS, "", "k1")
		if refused := failureOf(errOrNil(err)).reason == kmsv1alpha1.ReasonReferenceRefused; refused == allow {
			t.Errorf("allow-unmanaged-key-references=%v: err %v", allow, err)
		}
	}
}

func errOrNil(err error) error {
	if err == nil {
		return newSpecError("", "")
	}
	return err
}
