//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	awskmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// What real AWS KMS does that emulators do not (kms-notes.md, "Real KMS is
// eventually consistent and rewrites identities"), with the KMS server's
// realistic consistency on. Each test failed on the operator before it
// handled the behaviour.

// newRole registers an IAM role as created now at the KMS server: for a
// while KMS refuses it (InvalidArnException) and then lists grants to it by
// its unique id (AROA...) instead of its ARN.
func newRole(t *testing.T, name string) string {
	t.Helper()
	arn := "arn:aws:iam::111122223333:role/e2e-" + runID + "-" + name
	if err := registerPrincipal(arn, "0s"); err != nil {
		t.Fatal(err)
	}
	return arn
}

// registerPrincipal tells the KMS server that an IAM role or user was
// created createdAgo (a Go duration) ago.
func registerPrincipal(arn, createdAgo string) error {
	resp, err := http.Post(kmsServerURL("/_principals"), "application/json",
		strings.NewReader(`{"arn":"`+arn+`","createdAgo":"`+createdAgo+`"}`))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("registering principal %s: %s", arn, resp.Status)
	}
	return nil
}

// longLivedRoles are the roles the suite's grants and policies name, as a
// real account has them: created long before the run, so that KMS neither
// refuses them nor lists them by unique id. The tests of fresh roles use
// newRole.
var longLivedRoles = []string{"e2e-app", "e2e-retirer", "e2e-unlisted", "reader", "ssa"}

// TestGrantToFreshRole: a grant to a role created a moment ago is created
// once KMS knows the role, and kept while KMS shows the role by its unique
// id: the grantee never loses access.
func TestGrantToFreshRole(t *testing.T) {
	explainFailure(t)
	key := readyKey(t, nsMain, "fresh-role")
	role := newRole(t, "fresh")
	g := newGrant(nsMain, "gr-fresh", func(g *kmsv1alpha1.Grant) {
		g.Spec.KeyRef = &kmsv1alpha1.LocalObjectReference{Name: key.Name}
		g.Spec.GranteePrincipal = role
		g.Spec.Operations = []kmsv1alpha1.GrantOperation{"Decrypt"}
	})
	revokes := kmsCounts(t)["RevokeGrant"].Requests
	create(t, g)
	waitReady(t, g)
	id := g.Status.GrantID
	// Through several resyncs while KMS lists the grantee as AROA...
	deadline := time.Now().Add(consistencySetting(t, "principalIDWindow") + 2*time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(time.Second)
		if got := mustGet(t, g); got.Status.GrantID != id {
			t.Fatalf("grant replaced: %s -> %s", id, got.Status.GrantID)
		}
	}
	if n := kmsCounts(t)["RevokeGrant"].Requests - revokes; n != 0 {
		t.Errorf("%d RevokeGrant calls for a grant whose grantee KMS showed by its unique id", n)
	}
	if grants := grantsNamed(t, key.Status.KeyID, "kms-operator-"+string(g.UID)); len(grants) != 1 || grants[0].GrantID != id {
		t.Errorf("grants of the Grant: %+v, want %s", grants, id)
	}
}

// TestGrantDeletedBeforeListed: a Grant deleted while KMS does not list its
// new grant yet still revokes it: no grant outlives its object.
func TestGrantDeletedBeforeListed(t *testing.T) {
	explainFailure(t)
	key := readyKey(t, nsMain, "unlisted")
	g := newGrant(nsMain, "gr-unlisted", func(g *kmsv1alpha1.Grant) {
		g.Spec.KeyRef = &kmsv1alpha1.LocalObjectReference{Name: key.Name}
		g.Spec.GranteePrincipal = "arn:aws:iam::111122223333:role/e2e-unlisted"
		g.Spec.Operations = []kmsv1alpha1.GrantOperation{"Decrypt"}
	})
	create(t, g)
	waitReady(t, g)
	remove(t, g) // within the server's grant list lag
	waitGone(t, g)
	if grants := grantsNamed(t, key.Status.KeyID, "kms-operator-"+string(g.UID)); len(grants) != 0 {
		t.Errorf("grants left after the delete: %+v", grants)
	}
}

// TestKeyLostCreateNotListedYet: CreateKey is served but its answer lost,
// and the new key is not listed yet: the operator waits for it instead of
// creating a second key.
func TestKeyLostCreateNotListedYet(t *testing.T) {
	explainFailure(t)
	setKMSConfig(t, `{"faults":[{"op":"CreateKey","kind":"lost","rate":1}]}`)
	defer setKMSConfig(t, `{}`)
	creates := kmsCounts(t)["CreateKey"].Requests
	key := newKey(nsMain, "lost-create")
	create(t, key)
	eventually(t, "the first CreateKey", func() (bool, string) {
		n := kmsCounts(t)["CreateKey"].Requests - creates
		return n >= 1, ""
	})
	setKMSConfig(t, `{}`)
	waitReady(t, key)
	awaitLists(t)
	if ids := ownedKeys(t, key.UID); len(ids) != 1 || ids[0] != key.Status.KeyID {
		t.Errorf("keys of the object: %v, status %s; want exactly one", ids, key.Status.KeyID)
	}
	if n := kmsCounts(t)["CreateKey"].Requests - creates; n != 1 {
		t.Errorf("%d CreateKey calls; want 1", n)
	}
}

// TestKeyRebound: a Key whose object is lost (a cluster rebuilt from Git, a
// restore without status) and applied again with a new UID finds its key by
// the cluster, namespace and name tags, and does not make a second one.
func TestKeyRebound(t *testing.T) {
	explainFailure(t)
	key := newKey(nsMain, "rebound", func(k *kmsv1alpha1.Key) { k.Spec.Tags = map[string]string{"app": "x"} })
	create(t, key)
	waitReady(t, key)
	old, oldUID := key.Status.KeyID, key.UID
	update(t, key, func(k *kmsv1alpha1.Key) { k.Finalizers = nil })
	remove(t, key)
	waitGone(t, key)
	// A rebuilt cluster comes back after the tagging API lists the key.
	awaitLists(t)

	again := newKey(nsMain, "rebound", func(k *kmsv1alpha1.Key) { k.Spec.Tags = map[string]string{"app": "x"} })
	create(t, again)
	waitReady(t, again)
	if again.UID == oldUID || again.Status.KeyID != old {
		t.Errorf("re-applied Key has key %s (UID %s); want the old key %s", again.Status.KeyID, again.UID, old)
	}
	if !eventReasons(t, nsMain, "Key", again.Name)["Rebound"] {
		t.Errorf("no Rebound event")
	}
	awaitLists(t)
	if ids := ownedKeys(t, again.UID); len(ids) != 1 || ids[0] != old {
		t.Errorf("keys tagged with the new UID: %v, want [%s]", ids, old)
	}
}

// TestKeyNoVerdictFromStaleAnswers: KMS answers calls on a key made a moment
// ago as if it did not exist (NotFound): the operator waits instead of
// reporting a missing key.
func TestKeyNoVerdictFromStaleAnswers(t *testing.T) {
	explainFailure(t)
	key := newKey(nsMain, "stale", func(k *kmsv1alpha1.Key) {
		k.Spec.Rotation = &kmsv1alpha1.KeyRotation{Enabled: true}
		k.Spec.Enabled = aws.Bool(false)
	})
	seen := map[string]bool{}
	create(t, key)
	eventually(t, "Ready", func() (bool, string) {
		got := mustGet(t, key)
		for _, c := range got.Status.Conditions {
			if c.Status != metav1.ConditionTrue {
				seen[c.Reason] = true
			}
		}
		c := conditionOf(got, kmsv1alpha1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionTrue, ""
	})
	for _, bad := range []string{kmsv1alpha1.ReasonNotFound, kmsv1alpha1.ReasonInvalidKeyState, kmsv1alpha1.ReasonInvalidSpec} {
		if seen[bad] {
			t.Errorf("reason %s seen while KMS was catching up with the new key; want Propagating", bad)
		}
	}
}

// TestOwnershipOnEveryObservation: two objects observing one key both switch
// to Manage: one claims it, the other is refused, and they do not fight.
func TestOwnershipOnEveryObservation(t *testing.T) {
	explainFailure(t)
	shared := createUnmanaged(t, "observed twice")
	observe := func(name string) *kmsv1alpha1.Key {
		k := newKey(nsOpen, name, func(k *kmsv1alpha1.Key) {
			k.Spec.KeyID = shared.ID
			k.Spec.Description = "observed twice"
			k.Spec.ManagementPolicy = kmsv1alpha1.ManagementPolicyObserve
		})
		create(t, k)
		waitReady(t, k)
		return k
	}
	a, b := observe("obs-a"), observe("obs-b")
	manage := func(k *kmsv1alpha1.Key) { k.Spec.ManagementPolicy = kmsv1alpha1.ManagementPolicyManage }
	update(t, a, manage)
	waitReady(t, a)
	awaitLists(t) // a's ownership tags
	update(t, b, manage)
	waitCondition(t, b, kmsv1alpha1.ConditionReady, metav1.ConditionFalse, kmsv1alpha1.ReasonAdoptionRefused)
	time.Sleep(3 * time.Second) // resyncs
	waitCondition(t, b, kmsv1alpha1.ConditionReady, metav1.ConditionFalse, kmsv1alpha1.ReasonAdoptionRefused)
	if got := readKMS(t, shared.ID); got.tags[kmsv1alpha1.TagOwnerName] != "obs-a" {
		t.Errorf("owner tags %v, want obs-a's", got.tags)
	}
	for _, k := range []*kmsv1alpha1.Key{a, b} {
		update(t, k, func(k *kmsv1alpha1.Key) { k.Spec.DeletionPolicy = kmsv1alpha1.DeletionPolicyRetain })
		remove(t, k)
		waitGone(t, k)
	}
}

// TestAccessDenied: a call IAM denies is reported as AccessDenied (an IAM
// change fixes it, not the spec) and retried with backoff.
func TestAccessDenied(t *testing.T) {
	explainFailure(t)
	// A key of another account: the server answers AccessDeniedException,
	// as its key policy would.
	foreign := "arn:aws:kms:us-east-1:999988887777:key/00000000-0000-4000-8000-000000000001"
	g := newGrant(nsOpen, "gr-denied", func(g *kmsv1alpha1.Grant) {
		g.Spec.KeyID = foreign
		g.Spec.GranteePrincipal = "arn:aws:iam::111122223333:role/e2e-denied"
		g.Spec.Operations = []kmsv1alpha1.GrantOperation{"Decrypt"}
	})
	create(t, g)
	waitCondition(t, g, kmsv1alpha1.ConditionSynced, metav1.ConditionFalse, kmsv1alpha1.ReasonAccessDenied)
	remove(t, g)
	waitGone(t, g)
}

// TestKeyIDOfAnotherRegion: spec.keyID given as an ARN of another region is
// adopted in that region, not looked for in the default one.
func TestKeyIDOfAnotherRegion(t *testing.T) {
	explainFailure(t)
	euw1, err := kmsProvider.For("", "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	k, err := euw1.CreateKey(context.Background(), kmsclient.CreateKeyInput{Description: "in eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	awaitWrite(t)
	key := newKey(nsOpen, "other-region", func(key *kmsv1alpha1.Key) {
		key.Spec.KeyID = k.ARN
		key.Spec.Description = "in eu-west-1"
		key.Spec.DeletionPolicy = kmsv1alpha1.DeletionPolicyRetain
	})
	create(t, key)
	waitReady(t, key)
	if key.Status.ARN != k.ARN {
		t.Errorf("status.arn %s, want %s", key.Status.ARN, k.ARN)
	}
	remove(t, key)
	waitGone(t, key)
}

// TestPrimaryWithReplicasDeleted: deleting a multi-Region primary that has
// replicas leaves it PendingReplicaDeletion with no date: the operator
// reports that, makes up no date, and releases the object.
func TestPrimaryWithReplicasDeleted(t *testing.T) {
	explainFailure(t)
	key := newKey(nsMain, "mrk-primary", func(k *kmsv1alpha1.Key) { k.Spec.MultiRegion = true })
	create(t, key)
	waitReady(t, key)
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	awaitWrite(t)
	if _, err := awskms.NewFromConfig(cfg).ReplicateKey(ctx, &awskms.ReplicateKeyInput{
		KeyId: aws.String(key.Status.KeyID), ReplicaRegion: aws.String("eu-west-2"),
		Tags: []awskmstypes.Tag{{TagKey: aws.String(runTag), TagValue: aws.String(runID)}}}); err != nil {
		t.Fatal(err)
	}
	remove(t, key)
	waitGone(t, key)
	got := readKMS(t, key.Status.KeyID)
	if got.key.State != kmsclient.StatePendingReplicaDeletion || got.key.DeletionDate != nil {
		t.Errorf("primary is %s, deletion date %v; want PendingReplicaDeletion without a date", got.key.State, got.key.DeletionDate)
	}
	var note string
	for _, e := range namespaceEvents(t, nsMain) {
		if e.kind == "Key" && e.name == key.Name && e.reason == "DeletionScheduled" {
			note = e.note
		}
	}
	if !strings.Contains(note, "has not set a date") {
		t.Errorf("DeletionScheduled event %q; want it to say KMS has not set a date", note)
	}
}

// TestPolicyInChinaPartition: in aws-cn KMS stores an account id principal
// as arn:aws-cn:iam::...:root; comparing in the aws partition would rewrite
// the policy at every resync.
func TestPolicyInChinaPartition(t *testing.T) {
	explainFailure(t)
	key := newKey(nsMain, "cn-policy", func(k *kmsv1alpha1.Key) {
		k.Spec.Region = "cn-north-1"
		k.Spec.Policy = `{"Version":"2012-10-17","Statement":[{"Sid":"Root","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}]}`
	})
	create(t, key)
	waitReady(t, key)
	if !strings.HasPrefix(key.Status.ARN, "arn:aws-cn:kms:cn-north-1:") {
		t.Errorf("status.arn %s, want an aws-cn ARN", key.Status.ARN)
	}
	puts := kmsCounts(t)["PutKeyPolicy"].Requests
	time.Sleep(9 * time.Second) // two resyncs
	if n := kmsCounts(t)["PutKeyPolicy"].Requests - puts; n != 0 {
		t.Errorf("%d PutKeyPolicy calls over two resyncs of an unchanged policy", n)
	}
}

// TestOnDemandRotationOnce: a RotateKeyOnDemand whose answer is lost is not
// sent again: the retry finds the rotation in KMS.
func TestOnDemandRotationOnce(t *testing.T) {
	explainFailure(t)
	key := newKey(nsMain, "rotate-once", func(k *kmsv1alpha1.Key) { k.Spec.Rotation = &kmsv1alpha1.KeyRotation{Enabled: true} })
	create(t, key)
	waitReady(t, key)
	awaitWrite(t)
	setKMSConfig(t, `{"faults":[{"op":"RotateKeyOnDemand","kind":"lost","rate":1}]}`)
	defer setKMSConfig(t, `{}`)
	before := kmsCounts(t)["RotateKeyOnDemand"].Requests
	update(t, key, func(k *kmsv1alpha1.Key) { k.Spec.Rotation.OnDemandRequest = "once" })
	eventually(t, "the lost RotateKeyOnDemand", func() (bool, string) {
		return kmsCounts(t)["RotateKeyOnDemand"].Requests > before, ""
	})
	setKMSConfig(t, `{}`)
	eventually(t, "the request recorded", func() (bool, string) {
		got := mustGet(t, key)
		return got.Status.Rotation != nil && got.Status.Rotation.LastOnDemandRequest == "once", ""
	})
	if n := kmsCounts(t)["RotateKeyOnDemand"].Requests - before; n != 1 {
		t.Errorf("%d RotateKeyOnDemand calls for one request", n)
	}
	rotations, err := kms.ListKeyRotations(context.Background(), key.Status.KeyID)
	if err != nil || len(rotations) != 1 {
		t.Errorf("rotations %+v (%v), want one", rotations, err)
	}
}
