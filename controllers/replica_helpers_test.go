package controllers

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
	"github.com/kmsoperator/kms-operator/internal/kmsclient/kmsfake"
)

// The multi-Region and key material tests run a Key and its ReplicaKeys
// (and Secrets) in one fake API server over one fake KMS world, with the
// primary Key team-a/k in us-east-1 (the default region).
const (
	east = "us-east-1"
	west = "eu-west-1"
	asia = "ap-south-1"
)

type regionEnv struct {
	t        *testing.T
	provider *kmsfake.FakeProvider
	c        client.Client
	opts     Options
	keys     *KeyReconciler
	replicas *ReplicaKeyReconciler
	rec      *events.FakeRecorder
}

func newRegionEnv(t *testing.T, objs ...client.Object) *regionEnv {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, kmsv1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	p := kmsfake.NewFakeProvider()
	e := &regionEnv{
		t: t, provider: p,
		c: fake.NewClientBuilder().WithScheme(s).
			WithStatusSubresource(&kmsv1alpha1.Key{}, &kmsv1alpha1.ReplicaKey{}, &kmsv1alpha1.Alias{}, &kmsv1alpha1.Grant{}).
			WithIndex(&kmsv1alpha1.Alias{}, aliasTargetKeyRefField, indexAliasTargetKeyRef).
			WithIndex(&kmsv1alpha1.Alias{}, aliasNameField, indexAliasName).
			WithIndex(&kmsv1alpha1.Grant{}, grantKeyRefField, indexGrantKeyRef).
			WithIndex(&kmsv1alpha1.Key{}, keyIDField, indexKeyID).
			WithIndex(&kmsv1alpha1.Alias{}, referenceField, indexReference).
			WithIndex(&kmsv1alpha1.Grant{}, referenceField, indexReference).
			WithObjects(objs...).Build(),
		opts: Options{KMS: p, SyncPeriod: keySyncPeriod, ClusterName: keyTestCluster},
	}
	e.restart()
	return e
}

// restart replaces the reconcilers, as after an operator restart.
func (e *regionEnv) restart() {
	e.rec = events.NewFakeRecorder(100)
	e.keys = &KeyReconciler{Options: e.opts, client: e.c, reader: e.c, recorder: e.rec, memory: newKeyMemory()}
	e.replicas = &ReplicaKeyReconciler{Options: e.opts, client: e.c, recorder: e.rec, memory: newKeyMemory()}
}

func (e *regionEnv) kms(region string) *kmsfake.Fake { return e.provider.Fake(region) }

func (e *regionEnv) resetCalls() {
	for _, r := range []string{east, west, asia} {
		e.kms(r).ResetCalls()
	}
	drainEvents(e.rec)
}

func (e *regionEnv) reconcileKey() (ctrl.Result, error) {
	return e.keys.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: keyTestNS, Name: keyTestName}})
}

func (e *regionEnv) reconcileReplica(name string) (ctrl.Result, error) {
	return e.replicas.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: keyTestNS, Name: name}})
}

// mustKey and mustReplica reconcile and fail the test on an error. mustKey
// also runs the reconcile that finishes a Key's creation a moment later
// (finishCreationLater), as the workqueue would.
func (e *regionEnv) mustKey() ctrl.Result {
	e.t.Helper()
	res, err := e.reconcileKey()
	if err == nil && res.RequeueAfter == createdRecheck {
		res, err = e.reconcileKey()
	}
	if err != nil {
		e.t.Fatalf("reconcile Key: %v", err)
	}
	return res
}

func (e *regionEnv) mustReplica(name string) ctrl.Result {
	e.t.Helper()
	res, err := e.reconcileReplica(name)
	if err != nil {
		e.t.Fatalf("reconcile ReplicaKey %s: %v", name, err)
	}
	return res
}

func (e *regionEnv) key() *kmsv1alpha1.Key {
	e.t.Helper()
	k := &kmsv1alpha1.Key{}
	if err := e.c.Get(context.Background(), types.NamespacedName{Namespace: keyTestNS, Name: keyTestName}, k); err != nil {
		e.t.Fatal(err)
	}
	return k
}

// replica returns team-a/name, or nil when it is gone.
func (e *regionEnv) replica(name string) *kmsv1alpha1.ReplicaKey {
	e.t.Helper()
	r := &kmsv1alpha1.ReplicaKey{}
	err := e.c.Get(context.Background(), types.NamespacedName{Namespace: keyTestNS, Name: name}, r)
	if client.IgnoreNotFound(err) != nil {
		e.t.Fatal(err)
	}
	if err != nil {
		return nil
	}
	return r
}

// update changes obj as a user would: the generation goes up.
func (e *regionEnv) update(obj client.Object, mutate func()) {
	e.t.Helper()
	if err := e.c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		e.t.Fatal(err)
	}
	mutate()
	obj.SetGeneration(obj.GetGeneration() + 1)
	if err := e.c.Update(context.Background(), obj); err != nil {
		e.t.Fatal(err)
	}
}

// remove deletes obj as a user would; the finalizer keeps it until released.
func (e *regionEnv) remove(obj client.Object) {
	e.t.Helper()
	if err := e.c.Delete(context.Background(), obj); err != nil {
		e.t.Fatal(err)
	}
}

// primaryReady creates the multi-Region primary Key and returns its id.
func (e *regionEnv) primaryReady() string {
	e.t.Helper()
	e.mustKey()
	id := e.key().Status.KeyID
	if id == "" {
		e.t.Fatal("no key created")
	}
	return id
}

// replicaReady reconciles ReplicaKey name until its replica is Ready (a new
// replica is Creating in ReplicateKey's answer).
func (e *regionEnv) replicaReady(name string) *kmsv1alpha1.ReplicaKey {
	e.t.Helper()
	e.mustReplica(name)
	e.mustReplica(name)
	r := e.replica(name)
	if condition(r.Status.Conditions, kmsv1alpha1.ConditionReady) != "True/Available" {
		e.t.Fatalf("ReplicaKey %s not Ready: %+v", name, r.Status)
	}
	return r
}

func newMRKey(mutators ...func(*kmsv1alpha1.Key)) *kmsv1alpha1.Key {
	return newKey(append([]func(*kmsv1alpha1.Key){func(k *kmsv1alpha1.Key) { k.Spec.MultiRegion = true }}, mutators...)...)
}

// newReplicaKey is team-a/name, a replica of team-a/k in region, with the
// defaults the CRD would apply.
func newReplicaKey(name, region string, mutators ...func(*kmsv1alpha1.ReplicaKey)) *kmsv1alpha1.ReplicaKey {
	enabled := true
	r := &kmsv1alpha1.ReplicaKey{
		ObjectMeta: metav1.ObjectMeta{Namespace: keyTestNS, Name: name, UID: types.UID("uid-" + name), Generation: 1},
		Spec: kmsv1alpha1.ReplicaKeySpec{
			PrimaryKeyRef: &kmsv1alpha1.LocalObjectReference{Name: keyTestName, Kind: kmsv1alpha1.KindKey},
			Region:        region, Enabled: &enabled, DeletionPolicy: kmsv1alpha1.DeletionPolicyDelete,
			PendingWindowInDays: 30, ManagementPolicy: kmsv1alpha1.ManagementPolicyManage,
		},
	}
	for _, m := range mutators {
		m(r)
	}
	return r
}

// replicaOwnership is the five tags the operator puts on ReplicaKey name's replica.
func replicaOwnership(name string, extra map[string]string) map[string]string {
	tags := map[string]string{
		kmsv1alpha1.TagOwnerUID: "uid-" + name, kmsv1alpha1.TagOwnerNS: keyTestNS, kmsv1alpha1.TagOwnerName: name,
		kmsv1alpha1.TagOwnerCluster: keyTestCluster, kmsv1alpha1.TagOwnerKind: kmsv1alpha1.KindReplicaKey,
	}
	for k, v := range extra {
		tags[k] = v
	}
	return tags
}

// describe reads a key from the fake of region, as a test (a recorded call).
func (e *regionEnv) describe(region, id string) *kmsclient.Key {
	e.t.Helper()
	k, err := e.kms(region).DescribeKey(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

// secret is a Secret of team-a holding material under key.
func secret(name, key string, material []byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: keyTestNS, Name: name}, Data: map[string][]byte{key: material}}
}

// syncedOf summarises obj's Synced condition as "Status/Reason".
func syncedOf(obj object) string { return condition(obj.GetConditions(), kmsv1alpha1.ConditionSynced) }

// drainEventsFull returns the recorded events whole, notes included.
func drainEventsFull(rec *events.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}
