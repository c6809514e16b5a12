package controllers

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
)

// TestHeldKeysOf: a change of an Alias or Grant wakes the Keys being deleted
// that it references, by name or by key id, and no other Key.
func TestHeldKeysOf(t *testing.T) {
	deleting := func(name, id string) *kmsv1alpha1.Key {
		k := newKey(func(k *kmsv1alpha1.Key) {
			k.Name, k.UID = name, types.UID("uid-"+name)
			k.Status.KeyID, k.Status.ARN = id, "arn:aws:kms:us-east-1:111122223333:key/"+id
		})
		markDeleting(k)
		return k
	}
	live := newKey(func(k *kmsv1alpha1.Key) { k.Name, k.Status.KeyID = "live", "id-live" })
	s := runtime.NewScheme()
	if err := kmsv1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(s).WithIndex(&kmsv1alpha1.Key{}, keyIDField, indexKeyID).
		WithObjects(deleting("by-name", "id-1"), deleting("by-id", "id-2"), live).Build()
	r := &KeyReconciler{client: c}
	req := func(name string) reconcile.Request {
		return reconcile.Request{NamespacedName: client.ObjectKey{Namespace: keyTestNS, Name: name}}
	}
	cases := map[string]struct {
		reason string
		obj    client.Object
		want   []reconcile.Request
	}{
		"AliasByName":       {"an Alias's targetKeyRef", aliasTo("a", "by-name"), []reconcile.Request{req("by-name")}},
		"GrantByKeyID":      {"a Grant's recorded key id", grantByID("g", "id-2", "us-east-1"), []reconcile.Request{req("by-id")}},
		"LiveKey":           {"a Key not being deleted waits for nothing", aliasTo("a", "live"), nil},
		"MissingKey":        {"a Key that does not exist", aliasTo("a", "none"), nil},
		"AliasByRecordedID": {"an Alias recorded the key id", aliasTo("a", "none", func(a *kmsv1alpha1.Alias) { a.Status.TargetKeyID = "id-1" }), []reconcile.Request{req("by-name")}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, r.heldKeysOf(context.Background(), tc.obj)); diff != "" {
				t.Errorf("%s\n(-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

func TestReferenceReleased(t *testing.T) {
	a := aliasTo("a", "k")
	withCondition := a.DeepCopy()
	withCondition.Status.Conditions = []metav1.Condition{{Type: kmsv1alpha1.ConditionReady, Status: metav1.ConditionTrue}}
	retargeted := a.DeepCopy()
	retargeted.Spec.TargetKeyRef.Name = "other"
	deleting := a.DeepCopy()
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	recorded := a.DeepCopy()
	recorded.Status.TargetKeyID = "id"
	update := func(newObj client.Object) func() bool {
		return func() bool { return referenceReleased.Update(event.UpdateEvent{ObjectOld: a, ObjectNew: newObj}) }
	}
	cases := map[string]struct {
		reason string
		event  func() bool
		want   bool
	}{
		"Create":        {"a new referrer ends no wait", func() bool { return referenceReleased.Create(event.CreateEvent{Object: a}) }, false},
		"StatusOnly":    {"condition changes cost no lookup", update(withCondition), false},
		"Retargeted":    {"a reference moved elsewhere", update(retargeted), true},
		"DeletionBegun": {"a referrer being deleted holds nothing", update(deleting), true},
		"KeyIDRecorded": {"the recorded key changed", update(recorded), true},
		"Deleted":       {"a referrer gone", func() bool { return referenceReleased.Delete(event.DeleteEvent{Object: a}) }, true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := tc.event(); got != tc.want {
				t.Errorf("%s: let through %v, want %v", tc.reason, got, tc.want)
			}
		})
	}
}
