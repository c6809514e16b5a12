package controllers

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
	"github.com/kmsoperator/kms-operator/internal/kmsclient/kmsfake"
)

// The Key tests reconcile one object, team-a/k, in cluster "test".
const (
	keyTestNS      = "team-a"
	keyTestName    = "k"
	keyTestUID     = types.UID("uid-team-a-k")
	keyTestCluster = "test"
	keySyncPeriod  = 10 * time.Minute
)

// newKey is team-a/k with the defaults the CRD would apply, changed by mutators.
func newKey(mutators ...func(*kmsv1alpha1.Key)) *kmsv1alpha1.Key {
	enabled := true
	k := &kmsv1alpha1.Key{
		ObjectMeta: metav1.ObjectMeta{Namespace: keyTestNS, Name: keyTestName, UID: keyTestUID, Generation: 1},
		Spec: kmsv1alpha1.KeySpec{
			KeySpec:             kmsv1alpha1.KeySpecSymmetricDefault,
			Origin:              kmsv1alpha1.OriginAWSKMS,
			Enabled:             &enabled,
			DeletionPolicy:      kmsv1alpha1.DeletionPolicyDelete,
			PendingWindowInDays: 30,
			ManagementPolicy:    kmsv1alpha1.ManagementPolicyManage,
		},
	}
	for _, m := range mutators {
		m(k)
	}
	return k
}

func withDescription(d string) func(*kmsv1alpha1.Key) {
	return func(k *kmsv1alpha1.Key) { k.Spec.Description = d }
}

func withPolicy(p string) func(*kmsv1alpha1.Key) {
	return func(k *kmsv1alpha1.Key) { k.Spec.Policy = p }
}

func withTags(tags map[string]string) func(*kmsv1alpha1.Key) {
	return func(k *kmsv1alpha1.Key) { k.Spec.Tags = tags }
}

func withEnabled(on bool) func(*kmsv1alpha1.Key) {
	return func(k *kmsv1alpha1.Key) { k.Spec.Enabled = &on }
}

// withRotation turns automatic rotation on with period days (0: rotation off).
func withRotation(period int32) func(*kmsv1alpha1.Key) {
	return func(k *kmsv1alpha1.Key) {
		if period == 0 {
			k.Spec.Rotation = nil
			return
		}
		if k.Spec.Rotation == nil {
			k.Spec.Rotation = &kmsv1alpha1.KeyRotation{}
		}
		k.Spec.Rotation.Enabled, k.Spec.Rotation.PeriodInDays = true, period
	}
}

func withOnDemand(req string) func(*kmsv1alpha1.Key) {
	return func(k *kmsv1alpha1.Key) {
		if k.Spec.Rotation == nil {
			k.Spec.Rotation = &kmsv1alpha1.KeyRotation{}
		}
		k.Spec.Rotation.OnDemandRequest = req
	}
}

func withKeyID(id string) func(*kmsv1alpha1.Key) {
	return func(k *kmsv1alpha1.Key) { k.Spec.KeyID = id }
}

func withObserve() func(*kmsv1alpha1.Key) {
	return func(k *kmsv1alpha1.Key) { k.Spec.ManagementPolicy = kmsv1alpha1.ManagementPolicyObserve }
}

// keyEnv is a fake API server and a fake KMS with one reconciler over them.
type keyEnv struct {
	t        *testing.T
	provider *kmsfake.FakeProvider
	kms      *kmsfake.Fake // the default region
	c        client.Client
	opts     Options
	r        *KeyReconciler
	rec      *events.FakeRecorder
}

func newKeyEnv(t *testing.T, objs ...client.Object) *keyEnv {
	t.Helper()
	s := runtime.NewScheme()
	if err := kmsv1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	p := kmsfake.NewFakeProvider()
	e := &keyEnv{
		t:        t,
		provider: p,
		kms:      p.Fake(""),
		c: fake.NewClientBuilder().WithScheme(s).WithStatusSubresource(&kmsv1alpha1.Key{}).WithObjects(objs...).
			WithIndex(&kmsv1alpha1.Key{}, keyIDField, indexKeyID).
			WithIndex(&kmsv1alpha1.Alias{}, referenceField, indexReference).
			WithIndex(&kmsv1alpha1.Grant{}, referenceField, indexReference).Build(),
		opts: Options{KMS: p, SyncPeriod: keySyncPeriod, ClusterName: keyTestCluster},
	}
	e.restart()
	return e
}

// restart replaces the reconciler with a fresh one, as after an operator
// restart: nothing is remembered in memory.
func (e *keyEnv) restart() {
	e.rec = events.NewFakeRecorder(100)
	e.r = &KeyReconciler{Options: e.opts, client: e.c, recorder: e.rec, memory: newKeyMemory()}
}

// ageKey makes the key look created long ago, by another process: no write
// of its is recent enough for KMS to answer from before it.
func (e *keyEnv) ageKey() {
	e.t.Helper()
	e.restart()
	k := e.get()
	old := metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second))
	k.Status.CreationDate = &old
	if err := e.c.Status().Update(context.Background(), k); err != nil {
		e.t.Fatal(err)
	}
}

// ageCreateAttempt makes the last CreateKey attempt look d older, as if that
// much time had passed since.
func (e *keyEnv) ageCreateAttempt(d time.Duration) {
	e.t.Helper()
	k := e.get()
	at, err := time.Parse(time.RFC3339, k.Annotations[kmsv1alpha1.AnnotationCreateStarted])
	if err != nil {
		e.t.Fatal(err)
	}
	k.Annotations[kmsv1alpha1.AnnotationCreateStarted] = at.Add(-d).Format(time.RFC3339)
	if err := e.c.Update(context.Background(), k); err != nil {
		e.t.Fatal(err)
	}
}

// setWaitingSince makes the object look like it has been waiting for KMS to
// catch up (Synced=False, Propagating) in generation since the given time.
func (e *keyEnv) setWaitingSince(generation int64, since time.Time) {
	e.t.Helper()
	k := e.get()
	meta.RemoveStatusCondition(&k.Status.Conditions, kmsv1alpha1.ConditionSynced)
	k.Status.Conditions = append(k.Status.Conditions, metav1.Condition{
		Type: kmsv1alpha1.ConditionSynced, Status: metav1.ConditionFalse, Reason: kmsv1alpha1.ReasonPropagating,
		Message: "waiting", ObservedGeneration: generation, LastTransitionTime: metav1.NewTime(since),
	})
	if err := e.c.Status().Update(context.Background(), k); err != nil {
		e.t.Fatal(err)
	}
}

// useKMS swaps in a fake KMS prepared before the object existed (the object
// names one of its keys), with adoption allowed or not.
func (e *keyEnv) useKMS(p *kmsfake.FakeProvider, allowAdoption bool) {
	e.provider, e.kms = p, p.Fake("")
	e.opts.KMS, e.opts.AllowAdoption = p, allowAdoption
	e.restart()
}

func (e *keyEnv) reconcile() (ctrl.Result, error) {
	return e.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: keyTestNS, Name: keyTestName}})
}

// mustReconcile reconciles and fails the test on an error.
func (e *keyEnv) mustReconcile() ctrl.Result {
	e.t.Helper()
	res, err := e.reconcile()
	if err != nil {
		e.t.Fatalf("reconcile: %v", err)
	}
	return res
}

// get returns team-a/k, or nil when it is gone.
func (e *keyEnv) get() *kmsv1alpha1.Key {
	e.t.Helper()
	k := &kmsv1alpha1.Key{}
	err := e.c.Get(context.Background(), types.NamespacedName{Namespace: keyTestNS, Name: keyTestName}, k)
	if client.IgnoreNotFound(err) != nil {
		e.t.Fatal(err)
	}
	if err != nil {
		return nil
	}
	return k
}

// updateSpec changes the spec as a user would: the generation goes up (the
// fake client does not count generations).
func (e *keyEnv) updateSpec(mutate func(*kmsv1alpha1.Key)) {
	e.t.Helper()
	k := e.get()
	mutate(k)
	k.Generation++
	if err := e.c.Update(context.Background(), k); err != nil {
		e.t.Fatal(err)
	}
}

// setStatus replaces the object's status, e.g. to simulate a lost status write.
func (e *keyEnv) setStatus(st kmsv1alpha1.KeyStatus) {
	e.t.Helper()
	k := e.get()
	k.Status = st
	if err := e.c.Status().Update(context.Background(), k); err != nil {
		e.t.Fatal(err)
	}
}

// create reconciles a new object into a KMS key and returns the key id, with
// calls and events forgotten.
func (e *keyEnv) create() string {
	e.t.Helper()
	e.finishCreation(e.mustReconcile())
	k := e.get()
	if k.Status.KeyID == "" {
		e.t.Fatalf("no key created: %+v", k.Status)
	}
	e.kms.ResetCalls()
	drainEvents(e.rec)
	return k.Status.KeyID
}

// finishCreation runs the reconcile that finishes a creation put off for a
// moment (finishCreationLater), as the workqueue would after res.
func (e *keyEnv) finishCreation(res ctrl.Result) ctrl.Result {
	e.t.Helper()
	if res.RequeueAfter == createdRecheck && e.get().Status.KeyID == "" {
		return e.mustReconcile()
	}
	return res
}

// kmsKey is the fake's key id, read without recording a call.
func (e *keyEnv) kmsKey(id string) kmsclient.Key {
	e.t.Helper()
	for _, k := range e.kms.Keys() {
		if k.ID == id {
			return k
		}
	}
	e.t.Fatalf("no KMS key %s", id)
	return kmsclient.Key{}
}

// kmsTags reads a key's tags from the fake (a recorded call: use it after
// asserting calls).
func (e *keyEnv) kmsTags(id string) map[string]string {
	e.t.Helper()
	tags, err := e.kms.ListTags(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return tags
}

// unmanagedKey creates a key in the fake as someone else would, calls forgotten.
func (e *keyEnv) unmanagedKey(in kmsclient.CreateKeyInput) string {
	e.t.Helper()
	k, err := e.kms.CreateKey(context.Background(), in)
	if err != nil {
		e.t.Fatal(err)
	}
	e.kms.ResetCalls()
	return k.ID
}

// ownership is the four tags the operator puts on team-a/k's key, plus extra.
func ownership(uid types.UID, extra map[string]string) map[string]string {
	tags := map[string]string{
		kmsv1alpha1.TagOwnerUID: string(uid), kmsv1alpha1.TagOwnerNS: keyTestNS,
		kmsv1alpha1.TagOwnerName: keyTestName, kmsv1alpha1.TagOwnerCluster: keyTestCluster,
	}
	for k, v := range extra {
		tags[k] = v
	}
	return tags
}

// ownedBy is the ownership tags of another object.
func ownedBy(ns, name, cluster string) map[string]string {
	return map[string]string{
		kmsv1alpha1.TagOwnerUID: "uid-" + ns + "-" + name, kmsv1alpha1.TagOwnerNS: ns,
		kmsv1alpha1.TagOwnerName: name, kmsv1alpha1.TagOwnerCluster: cluster,
	}
}

// requeue summarises a result of the Key tests (see requeueOf).
func requeue(res ctrl.Result) string { return requeueOf(res, keySyncPeriod) }
