//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
	"github.com/kmsoperator/kms-operator/internal/policy"
)

const rootPolicy = `{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`

const twoStatementPolicy = `{"Version":"2012-10-17","Statement":[
 {"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
 {"Sid":"Readers","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:role/reader"]},"Action":["kms:Decrypt","kms:DescribeKey"],"Resource":"*"}]}`

func newKey(ns, name string, mutate ...func(*kmsv1alpha1.Key)) *kmsv1alpha1.Key {
	k := &kmsv1alpha1.Key{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, m := range mutate {
		m(k)
	}
	return k
}

// kmsKey is what KMS holds for a key, read straight from the KMS server.
type kmsKey struct {
	key      *kmsclient.Key
	tags     map[string]string
	policy   string
	rotation *kmsclient.Rotation
}

func readKMS(t *testing.T, id string) kmsKey {
	t.Helper()
	k, err := tryReadKMS(id)
	if kmsclient.IsNotFound(err) {
		// KMS may not show a key made a moment ago yet: the KMS server's
		// staleAfterWrite hides a new key from every operation but
		// DescribeKey for a while, so any of the reads can miss it.
		awaitWrite(t)
		k, err = tryReadKMS(id)
	}
	if err != nil {
		t.Fatalf("reading KMS key %s: %v", id, err)
	}
	return k
}

func tryReadKMS(id string) (kmsKey, error) {
	ctx := context.Background()
	var k kmsKey
	var err error
	if k.key, err = kms.DescribeKey(ctx, id); err != nil {
		return k, err
	}
	if k.tags, err = kms.ListTags(ctx, id); err != nil {
		return k, err
	}
	if k.key.State == kmsclient.StatePendingDeletion {
		return k, nil
	}
	if k.policy, err = kms.GetKeyPolicy(ctx, id); err != nil {
		return k, err
	}
	k.rotation, err = kms.GetRotation(ctx, id)
	return k, err
}

// waitKMS waits until the key in KMS satisfies check.
func waitKMS(t *testing.T, id, what string, check func(kmsKey) bool) kmsKey {
	t.Helper()
	var k kmsKey
	eventually(t, what, func() (bool, string) {
		k = readKMS(t, id)
		return check(k), fmt.Sprintf("state=%s description=%q tags=%v rotation=%+v", k.key.State, k.key.Description, k.tags, k.rotation)
	})
	return k
}

// createUnmanaged creates a key directly in KMS, as another tool would.
func createUnmanaged(t *testing.T, description string) *kmsclient.Key {
	t.Helper()
	k, err := kms.CreateKey(context.Background(), kmsclient.CreateKeyInput{
		Description: description, KeySpec: "SYMMETRIC_DEFAULT", KeyUsage: "ENCRYPT_DECRYPT", Origin: "AWS_KMS",
		Tags: map[string]string{runTag: runID}})
	if err != nil {
		t.Fatal(err)
	}
	awaitWrite(t) // a key made a moment ago is not found everywhere yet
	return k
}

func policyEquals(t *testing.T, a, b string) bool {
	eq, err := policy.Equal(a, b)
	if err != nil {
		t.Fatalf("comparing policies: %v", err)
	}
	return eq
}

func TestKeyLifecycle(t *testing.T) {
	explainFailure(t)
	key := newKey(nsMain, "lifecycle", func(k *kmsv1alpha1.Key) {
		k.Spec.Description = "lifecycle test"
		k.Spec.Rotation = &kmsv1alpha1.KeyRotation{Enabled: true, PeriodInDays: 180}
		k.Spec.Policy = rootPolicy
		k.Spec.Tags = map[string]string{"team": "a", "env": "test"}
		k.Spec.PendingWindowInDays = 7
	})
	create(t, key)
	waitReady(t, key)
	id := key.Status.KeyID
	if key.Status.KeyState != "Enabled" || key.Status.Rotation == nil || key.Status.Rotation.PeriodInDays != 180 || key.Status.Rotation.NextRotationDate == nil {
		t.Fatalf("status does not describe the key: %+v", key.Status)
	}
	if _, ok := key.Annotations[kmsv1alpha1.AnnotationCreateStarted]; !ok {
		t.Errorf("no %s annotation", kmsv1alpha1.AnnotationCreateStarted)
	}

	awaitLists(t) // tags show late
	got := readKMS(t, id)
	if got.key.Description != "lifecycle test" || got.key.State != "Enabled" {
		t.Errorf("KMS key: %+v", got.key)
	}
	if !got.rotation.Enabled || got.rotation.PeriodInDays != 180 {
		t.Errorf("KMS rotation: %+v", got.rotation)
	}
	if !policyEquals(t, got.policy, rootPolicy) {
		t.Errorf("KMS policy: %s", got.policy)
	}
	wantTags := map[string]string{"team": "a", "env": "test",
		kmsv1alpha1.TagOwnerUID: string(key.UID), kmsv1alpha1.TagOwnerNS: nsMain,
		kmsv1alpha1.TagOwnerName: "lifecycle", kmsv1alpha1.TagOwnerCluster: clusterName}
	if !maps.Equal(got.tags, wantTags) {
		t.Errorf("KMS tags: got %v, want %v", got.tags, wantTags)
	}

	steps := []struct {
		reason string
		mutate func(*kmsv1alpha1.Key)
		check  func(kmsKey) bool
	}{
		{"description", func(k *kmsv1alpha1.Key) { k.Spec.Description = "changed" },
			func(k kmsKey) bool { return k.key.Description == "changed" }},
		{"tags added, changed and removed", func(k *kmsv1alpha1.Key) { k.Spec.Tags = map[string]string{"team": "b", "cost": "42"} },
			func(k kmsKey) bool {
				return k.tags["team"] == "b" && k.tags["cost"] == "42" && k.tags["env"] == "" && k.tags[kmsv1alpha1.TagOwnerUID] != ""
			}},
		{"rotation period", func(k *kmsv1alpha1.Key) { k.Spec.Rotation.PeriodInDays = 365 },
			func(k kmsKey) bool { return k.rotation.Enabled && k.rotation.PeriodInDays == 365 }},
		{"policy", func(k *kmsv1alpha1.Key) { k.Spec.Policy = twoStatementPolicy },
			func(k kmsKey) bool { eq, _ := policy.Equal(k.policy, twoStatementPolicy); return eq }},
		{"rotation off", func(k *kmsv1alpha1.Key) { k.Spec.Rotation.Enabled = false },
			func(k kmsKey) bool { return !k.rotation.Enabled }},
		{"disabled", func(k *kmsv1alpha1.Key) { k.Spec.Enabled = ptr.To(false) },
			func(k kmsKey) bool { return k.key.State == "Disabled" }},
		{"enabled again", func(k *kmsv1alpha1.Key) { k.Spec.Enabled = ptr.To(true) },
			func(k kmsKey) bool { return k.key.State == "Enabled" }},
	}
	for _, s := range steps {
		update(t, key, s.mutate)
		waitReady(t, key)
		waitKMS(t, id, s.reason, s.check)
	}

	before := kmsCounts(t)["RotateKeyOnDemand"].Requests
	update(t, key, func(k *kmsv1alpha1.Key) { k.Spec.Rotation.OnDemandRequest = "2026-11-27" })
	waitReady(t, key)
	if key.Status.Rotation.LastOnDemandRequest != "2026-11-27" {
		t.Errorf("lastOnDemandRequest = %q", key.Status.Rotation.LastOnDemandRequest)
	}
	if n := kmsCounts(t)["RotateKeyOnDemand"].Requests - before; n != 1 {
		t.Errorf("RotateKeyOnDemand called %d times for one request, want 1", n)
	}

	remove(t, key)
	waitGone(t, key)
	k := readKMS(t, id)
	if k.key.State != kmsclient.StatePendingDeletion || k.key.DeletionDate == nil {
		t.Fatalf("after delete the key is %s, want PendingDeletion", k.key.State)
	}
	if days := time.Until(*k.key.DeletionDate).Hours() / 24; days < 6.9 || days > 7.1 {
		t.Errorf("deletion in %.1f days, want the declared 7", days)
	}
}

// TestKeyDrift changes a key behind the operator's back, one aspect at a
// time, and waits for the resync to put it back.
func TestKeyDrift(t *testing.T) {
	explainFailure(t)
	ctx := context.Background()
	key := newKey(nsMain, "drift", func(k *kmsv1alpha1.Key) {
		k.Spec.Description = "drift test"
		k.Spec.Rotation = &kmsv1alpha1.KeyRotation{Enabled: true}
		k.Spec.Policy = rootPolicy
		k.Spec.Tags = map[string]string{"team": "a"}
	})
	create(t, key)
	waitReady(t, key)
	id := key.Status.KeyID

	cases := []struct {
		reason string
		drift  func() error
		fixed  func(kmsKey) bool
	}{
		{"disabled outside", func() error { return kms.DisableKey(ctx, id) },
			func(k kmsKey) bool { return k.key.State == "Enabled" }},
		{"description changed outside", func() error { return kms.UpdateDescription(ctx, id, "hacked") },
			func(k kmsKey) bool { return k.key.Description == "drift test" }},
		{"tag added and changed outside", func() error {
			return kms.TagKey(ctx, id, map[string]string{"intruder": "x", "team": "z"})
		}, func(k kmsKey) bool { return k.tags["intruder"] == "" && k.tags["team"] == "a" }},
		{"rotation disabled outside", func() error { return kms.DisableRotation(ctx, id) },
			func(k kmsKey) bool { return k.rotation.Enabled && k.rotation.PeriodInDays == 365 }},
		{"policy replaced outside", func() error { return kms.PutKeyPolicy(ctx, id, twoStatementPolicy, false) },
			func(k kmsKey) bool { eq, _ := policy.Equal(k.policy, rootPolicy); return eq }},
		{"deletion scheduled outside", func() error { _, err := kms.ScheduleDeletion(ctx, id, 7); return err },
			func(k kmsKey) bool { return k.key.State == "Enabled" }},
	}
	for _, c := range cases {
		if err := c.drift(); err != nil {
			t.Fatalf("%s: %v", c.reason, err)
		}
		waitKMS(t, id, "correction of: "+c.reason, c.fixed)
	}
}

// TestKeyNoWritesWhenUnchanged: resyncs of a key that matches its spec read
// KMS but never write to it, including the policy KMS returns reformatted.
func TestKeyNoWritesWhenUnchanged(t *testing.T) {
	explainFailure(t)
	key := newKey(nsMain, "steady", func(k *kmsv1alpha1.Key) {
		k.Spec.Rotation = &kmsv1alpha1.KeyRotation{Enabled: true}
		k.Spec.Policy = twoStatementPolicy
		k.Spec.Tags = map[string]string{"team": "a"}
	})
	create(t, key)
	waitReady(t, key)
	writes := func() int {
		n := 0
		for op, c := range kmsCounts(t) {
			switch op {
			case "UpdateKeyDescription", "EnableKey", "DisableKey", "EnableKeyRotation", "DisableKeyRotation",
				"PutKeyPolicy", "TagResource", "UntagResource", "CreateKey":
				n += c.Requests
			}
		}
		return n
	}
	// Another test may be writing; this key's own resyncs are what is
	// measured, so look at its status too.
	before, describes := writes(), kmsCounts(t)["DescribeKey"].Requests
	time.Sleep(3 * (4 * time.Second))
	if kmsCounts(t)["DescribeKey"].Requests == describes {
		t.Fatal("no resync happened in three sync periods")
	}
	if w := writes() - before; w != 0 {
		t.Errorf("%d KMS writes while every key matched its spec", w)
	}
}

func TestKeyObserve(t *testing.T) {
	explainFailure(t)
	k := createUnmanaged(t, "made elsewhere")

	obs := newKey(nsOpen, "observe", func(o *kmsv1alpha1.Key) {
		o.Spec.ManagementPolicy = kmsv1alpha1.ManagementPolicyObserve
		o.Spec.KeyID = k.ID
		o.Spec.Description = "what we think it is"
	})
	create(t, obs)
	waitCondition(t, obs, kmsv1alpha1.ConditionReady, metav1.ConditionFalse, kmsv1alpha1.ReasonDrifted)
	waitCondition(t, obs, kmsv1alpha1.ConditionSynced, metav1.ConditionTrue, kmsv1alpha1.ReasonObserveOnly)
	if obs.Status.KeyID != k.ID || obs.Status.KeyState != "Enabled" {
		t.Errorf("status: %+v", obs.Status)
	}
	got := readKMS(t, k.ID)
	if got.key.Description != "made elsewhere" || len(got.tags) != 0 {
		t.Errorf("Observe wrote to KMS: description %q, tags %v", got.key.Description, got.tags)
	}
	if len(obs.Finalizers) != 0 {
		t.Errorf("Observe added finalizers %v", obs.Finalizers)
	}

	update(t, obs, func(o *kmsv1alpha1.Key) { o.Spec.Description = "made elsewhere" })
	waitReady(t, obs)
	remove(t, obs)
	waitGone(t, obs)
	if got := readKMS(t, k.ID); got.key.State != "Enabled" {
		t.Errorf("deleting an Observe object changed the key to %s", got.key.State)
	}
}

func TestKeyAdoption(t *testing.T) {
	explainFailure(t)
	unowned := createUnmanaged(t, "")

	refused := newKey(nsMain, "adopt-refused", func(k *kmsv1alpha1.Key) { k.Spec.KeyID = unowned.ID })
	create(t, refused)
	waitCondition(t, refused, kmsv1alpha1.ConditionSynced, metav1.ConditionFalse, kmsv1alpha1.ReasonAdoptionRefused)

	adopted := newKey(nsOpen, "adopt", func(k *kmsv1alpha1.Key) {
		k.Spec.KeyID = unowned.ID
		k.Spec.Description = "adopted"
		k.Spec.DeletionPolicy = kmsv1alpha1.DeletionPolicyRetain
	})
	create(t, adopted)
	waitReady(t, adopted)
	got := waitKMS(t, unowned.ID, "adopted key tagged and updated", func(k kmsKey) bool {
		return k.tags[kmsv1alpha1.TagOwnerUID] == string(adopted.UID) && k.key.Description == "adopted"
	})
	if got.tags[kmsv1alpha1.TagOwnerNS] != nsOpen {
		t.Errorf("ownership tags: %v", got.tags)
	}

	thief := newKey(nsOpen, "adopt-thief", func(k *kmsv1alpha1.Key) { k.Spec.KeyID = unowned.ID })
	create(t, thief)
	waitCondition(t, thief, kmsv1alpha1.ConditionSynced, metav1.ConditionFalse, kmsv1alpha1.ReasonAdoptionRefused)

	// Retain: the key stays as it is, without the operator's tags.
	remove(t, adopted)
	waitGone(t, adopted)
	awaitLists(t)
	got = readKMS(t, unowned.ID)
	if got.key.State != "Enabled" || got.tags[kmsv1alpha1.TagOwnerUID] != "" {
		t.Errorf("after Retain: state %s, tags %v", got.key.State, got.tags)
	}
}

// TestKeyRecreateCancelsDeletion: deleting a Key schedules the deletion of its
// key; a Key re-created to adopt it cancels that and restores the spec.
func TestKeyRecreateCancelsDeletion(t *testing.T) {
	explainFailure(t)
	first := newKey(nsOpen, "phoenix", func(k *kmsv1alpha1.Key) { k.Spec.Description = "rises" })
	create(t, first)
	waitReady(t, first)
	id := first.Status.KeyID
	remove(t, first)
	waitGone(t, first)
	waitKMS(t, id, "deletion scheduled", func(k kmsKey) bool { return k.key.State == kmsclient.StatePendingDeletion })

	again := newKey(nsOpen, "phoenix", func(k *kmsv1alpha1.Key) {
		k.Spec.KeyID = id
		k.Spec.Description = "rises again"
	})
	create(t, again)
	waitReady(t, again)
	waitKMS(t, id, "deletion cancelled and spec restored", func(k kmsKey) bool {
		return k.key.State == "Enabled" && k.key.Description == "rises again" && k.tags[kmsv1alpha1.TagOwnerUID] == string(again.UID)
	})
}

func TestKeyInvalidInput(t *testing.T) {
	explainFailure(t)
	creates := kmsCounts(t)["CreateKey"].Requests
	bad := newKey(nsMain, "bad-policy", func(k *kmsv1alpha1.Key) { k.Spec.Policy = `{"Statement": [` })
	create(t, bad)
	waitCondition(t, bad, kmsv1alpha1.ConditionSynced, metav1.ConditionFalse, kmsv1alpha1.ReasonInvalidSpec)
	if c := conditionOf(bad, kmsv1alpha1.ConditionSynced); c == nil || !strings.Contains(c.Message, "spec.policy") {
		t.Errorf("message does not name the field: %+v", c)
	}
	if n := kmsCounts(t)["CreateKey"].Requests - creates; n != 0 {
		t.Errorf("%d CreateKey calls for an invalid policy", n)
	}
	// Fixing the spec un-sticks it.
	update(t, bad, func(k *kmsv1alpha1.Key) { k.Spec.Policy = rootPolicy })
	waitReady(t, bad)

	// Admission catches what the schema can express.
	rsa := newKey(nsMain, "rsa-rotation", func(k *kmsv1alpha1.Key) {
		k.Spec.KeySpec = "RSA_2048"
		k.Spec.Rotation = &kmsv1alpha1.KeyRotation{Enabled: true}
	})
	err := k8s.Create(context.Background(), rsa)
	if err == nil || !strings.Contains(err.Error(), "spec.rotation") {
		t.Errorf("rotation on an RSA key: got %v, want a rejection naming spec.rotation", err)
	}
}

// TestKeyCrashDuringMassCreate kills the operator with SIGKILL while it
// creates keys, restarts it, and proves KMS ends with exactly one key per
// Key object.
func TestKeyCrashDuringMassCreate(t *testing.T) {
	explainFailure(t)
	const n = 40
	creates := kmsCounts(t)["CreateKey"].Requests
	keys := make([]*kmsv1alpha1.Key, n)
	var wg sync.WaitGroup
	for i := range keys {
		keys[i] = newKey(nsMain, fmt.Sprintf("crash-%02d", i), func(k *kmsv1alpha1.Key) {
			k.Spec.Rotation = &kmsv1alpha1.KeyRotation{Enabled: true}
		})
		wg.Add(1)
		go func() { defer wg.Done(); create(t, keys[i]) }()
	}
	wg.Wait()
	eventually(t, "the operator to be creating keys", func() (bool, string) {
		done := kmsCounts(t)["CreateKey"].Requests - creates
		return done >= 5, fmt.Sprintf("%d created", done)
	})
	mainOperator.kill()
	killedAt := kmsCounts(t)["CreateKey"].Requests - creates
	if err := mainOperator.start(); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		waitReady(t, k)
	}
	t.Logf("killed after %d of %d CreateKey calls", killedAt, n)
	awaitLists(t)
	for _, k := range keys {
		ids := ownedKeys(t, k.UID)
		if len(ids) != 1 || ids[0] != k.Status.KeyID {
			t.Errorf("%s: KMS keys tagged with its UID %v, status.keyID %s; want exactly one", k.Name, ids, k.Status.KeyID)
		}
	}
}
