//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// Multi-Region keys: a primary Key with ReplicaKeys (config/samples/multi-region),
// with the KMS server's realistic consistency plus the passing states
// multi-Region keys go through (a replica Creating, keys Updating after a
// failover).

const (
	euRegion = "eu-west-1"
	apRegion = "ap-southeast-2"
)

// multiRegionConsistency turns on the Creating and Updating states for the
// test, on top of the realistic preset.
func multiRegionConsistency(t *testing.T) {
	t.Helper()
	setKMSConfig(t, `{"consistency":{"preset":"realistic","replicaCreation":"2s","primaryRegionUpdate":"3s"}}`)
	t.Cleanup(func() { _ = putKMSConfig(`{}`) })
}

// regionalKMS is the SDK client of region, for what the operator never does
// (encrypt, decrypt) and for changes behind its back.
func regionalKMS(t *testing.T, region string) *awskms.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return awskms.NewFromConfig(cfg, func(o *awskms.Options) { o.Region = region })
}

// kmsIn is the operator's KMS client of region.
func kmsIn(t *testing.T, region string) kmsclient.API {
	t.Helper()
	api, err := kmsProvider.For("", region)
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// applySamplesDir applies a directory of config/samples into ns with alias
// names made unique to the run, as samples() does for the main samples.
func applySamplesDir(t *testing.T, dir, ns string) {
	t.Helper()
	out, err := exec.Command("kubectl", "kustomize", "../../config/samples/"+dir).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize config/samples/%s: %v", dir, err)
	}
	var docs [][]byte
	for _, doc := range strings.Split(string(out), "\n---\n") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		u.SetNamespace(ns)
		if u.GetKind() == "Alias" {
			name, _, _ := unstructured.NestedString(u.Object, "spec", "name")
			_ = unstructured.SetNestedField(u.Object, name+"-"+ns, "spec", "name")
		}
		b, _ := yaml.Marshal(u.Object)
		docs = append(docs, b)
	}
	kubectl(t, bytes.Join(docs, []byte("\n---\n")), "apply", "--server-side", "--field-manager=gitops", "-f", "-")
}

// TestMultiRegionReplicas: the multi-Region samples (a primary, two
// replicas, an alias of a replica) become Ready; what the primary's region
// encrypts, a replica's region decrypts; every aspect of a replica changed
// behind the operator's back is put back.
func TestMultiRegionReplicas(t *testing.T) {
	explainFailure(t)
	multiRegionConsistency(t)
	applySamplesDir(t, "multi-region", nsMain)
	key := &kmsv1alpha1.Key{}
	key.Namespace, key.Name = nsMain, "orders"
	eu, ap := &kmsv1alpha1.ReplicaKey{}, &kmsv1alpha1.ReplicaKey{}
	eu.Namespace, eu.Name, ap.Namespace, ap.Name = nsMain, "orders-eu", nsMain, "orders-ap"
	alias := &kmsv1alpha1.Alias{}
	alias.Namespace, alias.Name = nsMain, "orders-eu"
	for _, o := range []object{key, eu, ap, alias} {
		waitReady(t, o)
	}
	id := key.Status.KeyID
	if !strings.HasPrefix(id, "mrk-") || eu.Status.KeyID != id || ap.Status.KeyID != id {
		t.Fatalf("ids: key %s, replicas %s and %s; want one mrk- id", id, eu.Status.KeyID, ap.Status.KeyID)
	}
	if eu.Status.PrimaryRegion != regionOfKey(key) || key.Status.PrimaryRegion != regionOfKey(key) {
		t.Errorf("primary region: Key says %s, ReplicaKey %s; want %s", key.Status.PrimaryRegion, eu.Status.PrimaryRegion, regionOfKey(key))
	}
	if a, err := kmsIn(t, euRegion).GetAlias(context.Background(), alias.Spec.Name); err != nil || a.TargetKeyID != id {
		t.Errorf("alias %s in %s: %+v, %v; want it on the replica", alias.Spec.Name, euRegion, a, err)
	}

	// Encrypt in the primary's region, decrypt in a replica's.
	ctx := context.Background()
	enc, err := regionalKMS(t, regionOfKey(key)).Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("order 42")})
	if err != nil {
		t.Fatal(err)
	}
	for _, region := range []string{euRegion, apRegion} {
		dec, err := regionalKMS(t, region).Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, KeyId: aws.String(id)})
		if err != nil || string(dec.Plaintext) != "order 42" {
			t.Errorf("decrypt in %s: %v; want the primary's plaintext", region, err)
		}
	}

	// Each aspect of a replica, changed behind the operator's back (the
	// policy once the spec declares one: an omitted policy is KMS's).
	update(t, eu, func(r *kmsv1alpha1.ReplicaKey) { r.Spec.Policy = samplePolicy })
	waitReady(t, eu)
	api := kmsIn(t, euRegion)
	awaitWrite(t)
	for _, err := range []error{
		api.UpdateDescription(ctx, id, "changed"),
		api.TagKey(ctx, id, map[string]string{"team": "other", "extra": "x"}),
		api.PutKeyPolicy(ctx, id, `{"Version":"2012-10-17","Statement":[{"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},{"Sid":"Other","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:Decrypt","Resource":"*"}]}`, false),
		api.DisableKey(ctx, id),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the replica's aspects corrected", func() (bool, string) {
		k, err := api.DescribeKey(ctx, id)
		if err != nil {
			return false, err.Error()
		}
		tags, _ := api.ListTags(ctx, id)
		p, _ := api.GetKeyPolicy(ctx, id)
		return k.Description == "Orders, Europe" && k.State == kmsclient.StateEnabled && tags["team"] == "orders" && tags["extra"] == "" &&
				policyEquals(t, p, samplePolicy),
			fmt.Sprintf("%s %s %v", k.Description, k.State, tags)
	})
	if !eventReasons(t, nsMain, "ReplicaKey", eu.Name)["DriftCorrected"] {
		t.Error("no DriftCorrected event for the replica")
	}
}

const samplePolicy = `{"Version":"2012-10-17","Statement":[{"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`

// regionOfKey is the region of a Key's key, from its ARN.
func regionOfKey(k *kmsv1alpha1.Key) string { return strings.Split(k.Status.ARN, ":")[3] }

// TestMultiRegionFailover: failover is declared on the Key
// (spec.primaryRegion); it converges with one UpdatePrimaryRegion, both
// objects show the new primary, and nothing turns it back; failing back is
// the same declaration.
func TestMultiRegionFailover(t *testing.T) {
	explainFailure(t)
	multiRegionConsistency(t)
	key := newKey(nsMain, "failover", func(k *kmsv1alpha1.Key) {
		k.Spec.MultiRegion = true
		k.Spec.Rotation = &kmsv1alpha1.KeyRotation{Enabled: true, PeriodInDays: 180}
	})
	replica := &kmsv1alpha1.ReplicaKey{}
	replica.Namespace, replica.Name = nsMain, "failover-eu"
	replica.Spec = kmsv1alpha1.ReplicaKeySpec{PrimaryKeyRef: &kmsv1alpha1.LocalObjectReference{Name: key.Name}, Region: euRegion}
	create(t, key)
	create(t, replica)
	waitReady(t, key)
	waitReady(t, replica)
	home := regionOfKey(key)

	before := kmsCounts(t)["UpdatePrimaryRegion"].Requests
	update(t, key, func(k *kmsv1alpha1.Key) { k.Spec.PrimaryRegion = euRegion })
	waitPrimary(t, key, replica, euRegion)
	k, err := kmsIn(t, euRegion).DescribeKey(context.Background(), key.Status.KeyID)
	if err != nil || k.MultiRegionType != kmsclient.MultiRegionPrimary {
		t.Fatalf("the key in %s: %+v, %v; want the primary", euRegion, k, err)
	}
	time.Sleep(3 * 4 * time.Second) // three sync periods: nothing may fight over the primary
	waitPrimary(t, key, replica, euRegion)
	if n := kmsCounts(t)["UpdatePrimaryRegion"].Requests - before; n != 1 {
		t.Errorf("%d UpdatePrimaryRegion calls for one failover, want 1", n)
	}
	// Rotation is the family's, held by the primary: still on after the failover.
	if rot, err := kmsIn(t, euRegion).GetRotation(context.Background(), key.Status.KeyID); err != nil || !rot.Enabled || rot.PeriodInDays != 180 {
		t.Errorf("rotation after the failover: %+v, %v", rot, err)
	}

	update(t, key, func(k *kmsv1alpha1.Key) { k.Spec.PrimaryRegion = home })
	waitPrimary(t, key, replica, home)
}

// waitPrimary waits until the Key and the ReplicaKey are Ready and both
// show region as the primary's.
func waitPrimary(t *testing.T, key *kmsv1alpha1.Key, replica *kmsv1alpha1.ReplicaKey, region string) {
	t.Helper()
	eventually(t, "both objects showing "+region+" as the primary region", func() (bool, string) {
		ctx := context.Background()
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(key), key); err != nil {
			return false, err.Error()
		}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(replica), replica); err != nil {
			return false, err.Error()
		}
		kr, rr := conditionOf(key, kmsv1alpha1.ConditionReady), conditionOf(replica, kmsv1alpha1.ConditionReady)
		ready := kr != nil && kr.Status == "True" && rr != nil && rr.Status == "True"
		return ready && key.Status.PrimaryRegion == region && replica.Status.PrimaryRegion == region,
			fmt.Sprintf("Key %s (%v), ReplicaKey %s (%v)", key.Status.PrimaryRegion, kr, replica.Status.PrimaryRegion, rr)
	})
}

// TestPrimaryDeletionWaitsForReplicas: deleting a primary Key whose replica
// a ReplicaKey still declares waits for it (WaitingForReplicas, no
// ScheduleKeyDeletion); once the ReplicaKey is deleted, the primary is
// scheduled, waits in KMS as PendingReplicaDeletion, and the Key goes.
func TestPrimaryDeletionWaitsForReplicas(t *testing.T) {
	explainFailure(t)
	key := newKey(nsMain, "mrk-with-replica", func(k *kmsv1alpha1.Key) { k.Spec.MultiRegion = true; k.Spec.PendingWindowInDays = 7 })
	replica := &kmsv1alpha1.ReplicaKey{}
	replica.Namespace, replica.Name = nsMain, "mrk-with-replica-eu"
	replica.Spec = kmsv1alpha1.ReplicaKeySpec{PrimaryKeyRef: &kmsv1alpha1.LocalObjectReference{Name: key.Name}, Region: euRegion, PendingWindowInDays: 7}
	create(t, key)
	create(t, replica)
	waitReady(t, key)
	waitReady(t, replica)
	id := key.Status.KeyID

	remove(t, key)
	waitCondition(t, key, kmsv1alpha1.ConditionSynced, "False", kmsv1alpha1.ReasonWaitingForReplicas)
	if got := readKMS(t, id); got.key.State != kmsclient.StateEnabled {
		t.Errorf("the primary is %s while its replica is declared; want it untouched", got.key.State)
	}
	remove(t, replica)
	waitGone(t, replica)
	waitGone(t, key)
	got := readKMS(t, id)
	if got.key.State != kmsclient.StatePendingReplicaDeletion || got.key.DeletionDate != nil {
		t.Errorf("primary %s with deletion date %v; want PendingReplicaDeletion without a date", got.key.State, got.key.DeletionDate)
	}
	if r, err := kmsIn(t, euRegion).DescribeKey(context.Background(), id); err != nil || r.State != kmsclient.StatePendingDeletion {
		t.Errorf("replica: %+v, %v; want PendingDeletion", r, err)
	}
}
