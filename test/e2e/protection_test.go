//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// Grants to AWS service principals, a key's last usage, and the deletion
// guards of spec.deletionProtection (issue 14).

const (
	logsService = "logs.amazonaws.com"
	logGroupARN = "arn:aws:logs:us-east-1:111122223333:log-group:e2e"
)

// TestGrantToServicePrincipal: a Grant to a service principal with a source
// ARN matches KMS exactly, and is replaced make-before-break on a change.
func TestGrantToServicePrincipal(t *testing.T) {
	explainFailure(t)
	key := readyKey(t, nsMain, "svc-grant")
	keyID := key.Status.KeyID
	g := newGrant(nsMain, "svc-grant", func(g *kmsv1alpha1.Grant) {
		g.Spec.KeyRef = &kmsv1alpha1.LocalObjectReference{Name: key.Name}
		g.Spec.GranteeServicePrincipal = logsService
		g.Spec.RetiringServicePrincipal = logsService
		g.Spec.Operations = []kmsv1alpha1.GrantOperation{"Encrypt", "Decrypt", "GenerateDataKey"}
		g.Spec.Constraints = &kmsv1alpha1.GrantConstraints{SourceArn: logGroupARN}
	})
	create(t, g)
	waitReady(t, g)
	want := func(sourceARN string) kmsclient.Grant {
		return kmsclient.Grant{KeyID: key.Status.ARN, Name: "kms-operator-" + string(g.UID),
			GranteeServicePrincipal: logsService, RetiringServicePrincipal: logsService,
			Operations: []string{"Decrypt", "Encrypt", "GenerateDataKey"}, SourceARN: sourceARN}
	}
	checkOnly := func(what string, want kmsclient.Grant) {
		t.Helper()
		grants := listGrants(t, keyID)
		if len(grants) != 1 || grants[0].GrantID != g.Status.GrantID {
			t.Fatalf("%s: grants %+v, want only status.grantID %s", what, grants, g.Status.GrantID)
		}
		got := grants[0]
		got.GrantID, got.Operations = "", slices.Sorted(slices.Values(got.Operations))
		if got.GranteePrincipal != "" || got.RetiringPrincipal != "" {
			t.Errorf("%s: the grant to a service shows principal ARNs %q, %q", what, got.GranteePrincipal, got.RetiringPrincipal)
		}
		got.GranteePrincipal, got.RetiringPrincipal = "", ""
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
			t.Errorf("%s: KMS has\n %+v\nwant\n %+v", what, got, want)
		}
	}
	checkOnly("created", want(logGroupARN))

	oldID := g.Status.GrantID
	update(t, g, func(g *kmsv1alpha1.Grant) { g.Spec.Constraints.SourceArn = logGroupARN + "-2" })
	eventually(t, "the grant to be replaced", func() (bool, string) {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(g), g); err != nil {
			return false, err.Error()
		}
		c := conditionOf(g, kmsv1alpha1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionTrue && g.Status.GrantID != oldID, fmt.Sprintf("status %+v", g.Status)
	})
	checkOnly("replaced", want(logGroupARN+"-2"))
	var created, revoked time.Time
	eventually(t, "the Created and Revoked events", func() (bool, string) {
		created = grantEventTime(t, g.Name, "Created", g.Status.GrantID)
		revoked = grantEventTime(t, g.Name, "Revoked", oldID)
		return !created.IsZero() && !revoked.IsZero(), fmt.Sprintf("created %v, revoked %v", created, revoked)
	})
	if !created.Before(revoked) {
		t.Errorf("grant %s revoked at %s, before its replacement was created at %s",
			oldID, revoked.Format(time.StampMicro), created.Format(time.StampMicro))
	}

	remove(t, g)
	waitGone(t, g)
	if left := listGrants(t, keyID); len(left) != 0 {
		t.Errorf("grants left after the delete: %+v", left)
	}
}

// TestServiceGrantRefused: the API server refuses what KMS would (the
// validation tests hold every combination and message).
func TestServiceGrantRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*kmsv1alpha1.GrantSpec)
		want   string
	}{
		{"no source ARN", func(s *kmsv1alpha1.GrantSpec) { s.Constraints = nil }, "spec.granteeServicePrincipal needs spec.constraints.sourceArn"},
		{"two grantees", func(s *kmsv1alpha1.GrantSpec) { s.GranteePrincipal = grantee }, "exactly one of spec.granteePrincipal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGrant(nsMain, "svc-refused", func(g *kmsv1alpha1.Grant) {
				g.Spec.KeyRef = &kmsv1alpha1.LocalObjectReference{Name: "any"}
				g.Spec.GranteeServicePrincipal, g.Spec.RetiringServicePrincipal = logsService, logsService
				g.Spec.Operations = []kmsv1alpha1.GrantOperation{"Encrypt"}
				g.Spec.Constraints = &kmsv1alpha1.GrantConstraints{SourceArn: logGroupARN}
				tc.mutate(&g.Spec)
			})
			err := k8s.Create(context.Background(), g)
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("create: %v; want Invalid saying %q", err, tc.want)
			}
		})
	}
}

// encrypt uses the key as an application would, so that KMS records a use.
func encrypt(t *testing.T, keyID string) {
	t.Helper()
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := awskms.NewFromConfig(cfg).Encrypt(ctx, &awskms.EncryptInput{KeyId: &keyID, Plaintext: []byte("e2e")}); err != nil {
		t.Fatalf("encrypting with %s: %v", keyID, err)
	}
}

// TestKeyDeletionProtected: a protected Key used recently is not scheduled
// for deletion and says why, with an event each time; it is scheduled once
// the protection is removed, the date in the last event. kubectl get keys -o
// wide shows when it was last used.
func TestKeyDeletionProtected(t *testing.T) {
	explainFailure(t)
	key := newKey(nsMain, "protected", func(k *kmsv1alpha1.Key) {
		k.Spec.DeletionProtection = &kmsv1alpha1.KeyDeletionProtection{UnusedForDays: 30}
		k.Spec.PendingWindowInDays = 7
	})
	create(t, key)
	waitReady(t, key)
	id := key.Status.KeyID
	awaitWrite(t)
	encrypt(t, id)
	eventually(t, "status.lastUsage to show the Encrypt", func() (bool, string) {
		got := mustGet(t, key).Status.LastUsage
		return got != nil && got.Operation == "Encrypt" && got.Time != nil, fmt.Sprintf("%+v", got)
	})
	if used := wideColumn(t, key.Name, "LAST USED"); !regexp.MustCompile(`^[0-9]+[smh]`).MatchString(used) {
		t.Errorf("kubectl get keys -o wide shows LAST USED %q, want the age of the use", used)
	}

	remove(t, key)
	waitCondition(t, key, kmsv1alpha1.ConditionReady, metav1.ConditionFalse, kmsv1alpha1.ReasonDeletionProtected)
	if c := conditionOf(key, kmsv1alpha1.ConditionSynced); c == nil || !strings.Contains(c.Message, "was last used (Encrypt)") ||
		!strings.Contains(c.Message, "remove spec.deletionProtection.unusedForDays") {
		t.Errorf("Synced = %+v, want DeletionProtected saying when the key was used and what to do", c)
	}
	time.Sleep(5 * time.Second) // a resync or two: the guard holds at each
	if k := readKMS(t, id); k.key.State != kmsclient.StateEnabled {
		t.Errorf("the protected key is %s, want Enabled", k.key.State)
	}
	if n := countEvents(t, key.Name, kmsv1alpha1.ReasonDeletionProtected); n < 2 {
		t.Errorf("%d DeletionProtected events, want one each time the guard held (the sync period is %s)", n, syncPeriod)
	}

	update(t, key, func(k *kmsv1alpha1.Key) { k.Spec.DeletionProtection = nil })
	waitGone(t, key)
	if k := readKMS(t, id); k.key.State != kmsclient.StatePendingDeletion {
		t.Errorf("after the protection was removed the key is %s, want PendingDeletion", k.key.State)
	}
	if note := lastEvent(t, key.Name, "DeletionScheduled"); !strings.Contains(note, "scheduled for deletion on ") {
		t.Errorf("the last event %q does not give the deletion date", note)
	}
}

// TestKeyUnusedLongEnough: a protected Key last used longer ago than the
// period, by KMS's clock (moved 10 days ahead), is scheduled.
func TestKeyUnusedLongEnough(t *testing.T) {
	explainFailure(t)
	key := newKey(nsMain, "unused-long", func(k *kmsv1alpha1.Key) {
		k.Spec.DeletionProtection = &kmsv1alpha1.KeyDeletionProtection{UnusedForDays: 7}
	})
	create(t, key)
	waitReady(t, key)
	awaitWrite(t)
	encrypt(t, key.Status.KeyID)
	setKMSConfig(t, `{"clockOffset":"240h"}`)
	defer setKMSConfig(t, `{}`)
	remove(t, key)
	waitGone(t, key)
	if k := readKMS(t, key.Status.KeyID); k.key.State != kmsclient.StatePendingDeletion {
		t.Errorf("the key used 10 days ago is %s, want PendingDeletion", k.key.State)
	}
}

// TestKeyDeletionWaitsForReferences: a Key with a referencing Alias and
// Grant waits and names them; the operator deletes neither; the key is
// scheduled once they are gone.
func TestKeyDeletionWaitsForReferences(t *testing.T) {
	explainFailure(t)
	key := readyKey(t, nsMain, "referenced")
	id := key.Status.KeyID
	a := newAlias(nsMain, "referenced", aliasName("referenced"), targetKey(key.Name))
	g := newGrant(nsMain, "referenced", func(g *kmsv1alpha1.Grant) {
		g.Spec.KeyRef = &kmsv1alpha1.LocalObjectReference{Name: key.Name}
		g.Spec.GranteePrincipal = grantee
		g.Spec.Operations = []kmsv1alpha1.GrantOperation{"Decrypt"}
	})
	create(t, a)
	create(t, g)
	waitReady(t, a)
	waitReady(t, g)

	remove(t, key)
	waitCondition(t, key, kmsv1alpha1.ConditionReady, metav1.ConditionFalse, kmsv1alpha1.ReasonStillReferenced)
	if c := conditionOf(key, kmsv1alpha1.ConditionSynced); c == nil || !strings.Contains(c.Message, "Alias referenced, Grant referenced") {
		t.Errorf("Synced = %+v, want StillReferenced naming the Alias and the Grant", c)
	}
	if k := readKMS(t, id); k.key.State != kmsclient.StateEnabled {
		t.Errorf("the referenced key is %s, want Enabled", k.key.State)
	}
	for _, o := range []client.Object{a, g} {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(o), o); err != nil || !o.GetDeletionTimestamp().IsZero() {
			t.Errorf("%s: %v, deletion %v; the operator must not delete it", o.GetName(), err, o.GetDeletionTimestamp())
		}
	}

	remove(t, a)
	waitGone(t, a)
	waitCondition(t, key, kmsv1alpha1.ConditionSynced, metav1.ConditionFalse, kmsv1alpha1.ReasonStillReferenced)
	eventually(t, "the Key to name only the Grant", func() (bool, string) {
		c := conditionOf(mustGet(t, key), kmsv1alpha1.ConditionSynced)
		return c != nil && strings.Contains(c.Message, "by Grant referenced in"), fmt.Sprintf("%+v", c)
	})
	remove(t, g)
	waitGone(t, key)
	waitKMS(t, id, "deletion scheduled", func(k kmsKey) bool { return k.key.State == kmsclient.StatePendingDeletion })
}

// wideColumn is the value of column in `kubectl get keys -o wide` for the
// Key name of nsMain.
func wideColumn(t *testing.T, name, column string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(kubectl(t, nil, "get", "keys", "-n", nsMain, name, "-o", "wide")), "\n")
	at := strings.Index(lines[0], column)
	if len(lines) != 2 || at < 0 || len(lines[1]) <= at {
		t.Fatalf("kubectl get keys -o wide has no %s column:\n%s", column, strings.Join(lines, "\n"))
	}
	return strings.Fields(lines[1][at:])[0]
}

// keyEvents are the events about the Key name of nsMain.
func keyEvents(t *testing.T, name string) []eventsv1.Event {
	t.Helper()
	var evs eventsv1.EventList
	if err := k8s.List(context.Background(), &evs, client.InNamespace(nsMain)); err != nil {
		t.Fatalf("listing events: %v", err)
	}
	var out []eventsv1.Event
	for _, e := range evs.Items {
		if e.Regarding.Kind == "Key" && e.Regarding.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// countEvents is how many times the operator reported reason about the Key
// name (the events API folds repeats into a series, counted once it repeats).
func countEvents(t *testing.T, name, reason string) int {
	t.Helper()
	n := 0
	for _, e := range keyEvents(t, name) {
		switch {
		case e.Reason != reason:
		case e.Series != nil:
			n += int(e.Series.Count)
		default:
			n++
		}
	}
	return n
}

// lastEvent is the note of the Key's latest event with reason.
func lastEvent(t *testing.T, name, reason string) string {
	t.Helper()
	var note string
	var at time.Time
	for _, e := range keyEvents(t, name) {
		if e.Reason == reason && !e.EventTime.Time.Before(at) {
			note, at = e.Note, e.EventTime.Time
		}
	}
	return note
}
