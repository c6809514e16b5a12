//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// KMS alias names are global to the KMS server, which other runs share: each
// carries the run id.
func aliasName(suffix string) string { return "alias/e2e-" + runID + "-" + suffix }

func newAlias(ns, name, alias string, mutate ...func(*kmsv1alpha1.Alias)) *kmsv1alpha1.Alias {
	a := &kmsv1alpha1.Alias{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: kmsv1alpha1.AliasSpec{Name: alias}}
	for _, m := range mutate {
		m(a)
	}
	return a
}

func targetKey(name string) func(*kmsv1alpha1.Alias) {
	return func(a *kmsv1alpha1.Alias) { a.Spec.TargetKeyRef = &kmsv1alpha1.LocalObjectReference{Name: name} }
}

func newGrant(ns, name string, mutate ...func(*kmsv1alpha1.Grant)) *kmsv1alpha1.Grant {
	g := &kmsv1alpha1.Grant{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, m := range mutate {
		m(g)
	}
	return g
}

// readyKey creates a Key and waits until it has its KMS key.
func readyKey(t *testing.T, ns, name string) *kmsv1alpha1.Key {
	t.Helper()
	k := newKey(ns, name)
	create(t, k)
	waitReady(t, k)
	return k
}

// kmsAlias is the key alias name points at in KMS, "" when it does not exist.
func kmsAlias(t *testing.T, name string) string {
	t.Helper()
	a, err := kms.GetAlias(context.Background(), name)
	if kmsclient.IsNotFound(err) {
		return ""
	}
	if err != nil {
		t.Fatalf("reading alias %s: %v", name, err)
	}
	return a.TargetKeyID
}

// waitAlias waits until alias name points at keyID in KMS ("": is gone).
func waitAlias(t *testing.T, name, keyID, what string) {
	t.Helper()
	eventually(t, what, func() (bool, string) {
		got := kmsAlias(t, name)
		return got == keyID, fmt.Sprintf("alias %s points at %q, want %q", name, got, keyID)
	})
}

// listGrants lists the grants on a key once the list shows every change made
// so far (ListGrants lags).
func listGrants(t *testing.T, keyID string) []kmsclient.Grant {
	t.Helper()
	awaitLists(t)
	return listedGrants(t, keyID)
}

// listedGrants lists keyID's grants now: for checks of many keys after one
// awaitLists.
func listedGrants(t *testing.T, keyID string) []kmsclient.Grant {
	t.Helper()
	grants, err := kms.ListGrants(context.Background(), keyID)
	if err != nil {
		t.Fatalf("listing grants of %s: %v", keyID, err)
	}
	return grants
}

func grantsNamed(t *testing.T, keyID, name string) []kmsclient.Grant {
	t.Helper()
	var out []kmsclient.Grant
	for _, g := range listGrants(t, keyID) {
		if g.Name == name {
			out = append(out, g)
		}
	}
	return out
}

// eventNote is one event about an object, read through either events API.
type eventNote struct {
	api, kind, name, reason, note string
}

// namespaceEvents reads the events of ns through both the core v1 and the
// events.k8s.io v1 API.
func namespaceEvents(t *testing.T, ns string) []eventNote {
	t.Helper()
	ctx := context.Background()
	var core corev1.EventList
	if err := k8s.List(ctx, &core, client.InNamespace(ns)); err != nil {
		t.Fatalf("listing core events: %v", err)
	}
	var evs eventsv1.EventList
	if err := k8s.List(ctx, &evs, client.InNamespace(ns)); err != nil {
		t.Fatalf("listing events.k8s.io events: %v", err)
	}
	var out []eventNote
	for _, e := range core.Items {
		out = append(out, eventNote{"core/v1", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message})
	}
	for _, e := range evs.Items {
		out = append(out, eventNote{"events.k8s.io/v1", e.Regarding.Kind, e.Regarding.Name, e.Reason, e.Note})
	}
	return out
}

// eventReasons are the reasons of the events about kind/name in ns.
func eventReasons(t *testing.T, ns, kind, name string) map[string]bool {
	t.Helper()
	reasons := map[string]bool{}
	for _, e := range namespaceEvents(t, ns) {
		if e.kind == kind && e.name == name {
			reasons[e.reason] = true
		}
	}
	return reasons
}

func TestAliasLifecycle(t *testing.T) {
	explainFailure(t)
	ctx := context.Background()
	name := aliasName("lifecycle")
	k1, k2 := readyKey(t, nsMain, "al-life-1"), readyKey(t, nsMain, "al-life-2")
	id1, id2 := k1.Status.KeyID, k2.Status.KeyID

	a := newAlias(nsMain, "al-life", name, targetKey(k1.Name))
	create(t, a)
	waitReady(t, a)
	if got := kmsAlias(t, name); got != id1 {
		t.Fatalf("KMS alias points at %q, want the Key's %s", got, id1)
	}
	observed, err := kms.GetAlias(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if a.Status.TargetKeyID != id1 || a.Status.ARN != observed.ARN || !strings.HasSuffix(a.Status.ARN, ":"+name) {
		t.Errorf("status %+v, want targetKeyID %s and arn %s", a.Status, id1, observed.ARN)
	}

	// Re-target through the spec: UpdateAlias, and KMS follows.
	updates := kmsCounts(t)["UpdateAlias"].Requests
	update(t, a, func(a *kmsv1alpha1.Alias) { a.Spec.TargetKeyRef.Name = k2.Name })
	waitReady(t, a)
	if a.Status.TargetKeyID != id2 {
		t.Errorf("after re-target status.targetKeyID = %s, want %s", a.Status.TargetKeyID, id2)
	}
	waitAlias(t, name, id2, "the alias to follow the spec to the second key")
	if n := kmsCounts(t)["UpdateAlias"].Requests - updates; n < 1 {
		t.Errorf("re-targeted without UpdateAlias (%d calls)", n)
	}

	// Drift, put back by the resync.
	drifts := []struct {
		what  string
		drift func() error
	}{
		{"re-targeted in KMS", func() error { return kms.UpdateAlias(ctx, name, id1) }},
		{"deleted in KMS", func() error { return kms.DeleteAlias(ctx, name) }},
	}
	for _, d := range drifts {
		if err := d.drift(); err != nil {
			t.Fatalf("%s: %v", d.what, err)
		}
		if got := kmsAlias(t, name); got == id2 {
			t.Fatalf("%s: the drift did not happen", d.what)
		}
		waitAlias(t, name, id2, "correction of: alias "+d.what)
	}

	remove(t, a)
	waitGone(t, a)
	if got := kmsAlias(t, name); got != "" {
		t.Errorf("after deleting the Alias the KMS alias still points at %s", got)
	}
}

// TestAliasAppliedWithKey applies an Alias and then its Key at once: the Alias
// waits for the Key, quietly, and both end Ready.
func TestAliasAppliedWithKey(t *testing.T) {
	explainFailure(t)
	name := aliasName("together")
	a := newAlias(nsMain, "al-together", name, targetKey("al-together-key"))
	key := newKey(nsMain, "al-together-key")

	// Record every condition the Alias shows until it is Ready.
	var mu sync.Mutex
	seen := map[string]bool{}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		obj := &kmsv1alpha1.Alias{}
		for {
			if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(a), obj); err == nil {
				mu.Lock()
				for _, c := range obj.Status.Conditions {
					if c.Status != metav1.ConditionTrue {
						seen[c.Type+"="+c.Reason] = true
					}
				}
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	create(t, a)
	create(t, key)
	waitReady(t, key)
	waitReady(t, a)
	close(stop)
	<-done

	if a.Status.TargetKeyID != key.Status.KeyID {
		t.Errorf("alias status.targetKeyID %s, Key %s", a.Status.TargetKeyID, key.Status.KeyID)
	}
	if got := kmsAlias(t, name); got != key.Status.KeyID {
		t.Errorf("KMS alias points at %q, want %s", got, key.Status.KeyID)
	}
	t.Logf("non-True conditions seen before Ready: %v", slices.Sorted(maps.Keys(seen)))
	// WaitingForKey until the Key has its key; then, KMS being eventually
	// consistent, CreateAlias on a key made a moment ago can be answered as
	// if it did not exist yet: Propagating, a wait, never an error.
	for c := range seen {
		if !strings.HasSuffix(c, "="+kmsv1alpha1.ReasonWaitingForKey) && !strings.HasSuffix(c, "="+kmsv1alpha1.ReasonPropagating) {
			t.Errorf("the Alias showed %s while its Key was being created; only WaitingForKey and Propagating are expected", c)
		}
	}
	// Events are emitted at each change of condition, also those the poll
	// missed; they are written asynchronously, the last one being Created.
	var reasons map[string]bool
	eventually(t, "the Created event", func() (bool, string) {
		reasons = eventReasons(t, nsMain, "Alias", a.Name)
		return reasons["Created"], fmt.Sprint(reasons)
	})
	t.Logf("events about the Alias: %v", slices.Sorted(maps.Keys(reasons)))
	for r := range reasons {
		if r != kmsv1alpha1.ReasonWaitingForKey && r != kmsv1alpha1.ReasonPropagating && r != "Created" {
			t.Errorf("event %s about the Alias; only WaitingForKey, Propagating and Created are expected", r)
		}
	}
}

// TestAliasConflicts: an alias name already taken, in KMS by someone else or
// by another Alias object, is left alone.
func TestAliasConflicts(t *testing.T) {
	explainFailure(t)
	ctx := context.Background()
	key := readyKey(t, nsMain, "al-conflict")

	t.Run("taken in KMS", func(t *testing.T) {
		name := aliasName("taken")
		other := createUnmanaged(t, "holds an alias")
		if err := kms.CreateAlias(ctx, name, other.ID); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = kms.DeleteAlias(ctx, name) })
		a := newAlias(nsMain, "al-taken", name, targetKey(key.Name))
		create(t, a)
		waitCondition(t, a, kmsv1alpha1.ConditionSynced, metav1.ConditionFalse, kmsv1alpha1.ReasonConflict)
		if c := conditionOf(a, kmsv1alpha1.ConditionSynced); !strings.Contains(c.Message, other.ID) || !strings.Contains(c.Message, "--allow-adoption") {
			t.Errorf("the conflict message names neither the key the alias points at nor the way out: %q", c.Message)
		}
		if c := conditionOf(a, kmsv1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionFalse {
			t.Errorf("Ready = %+v during a conflict", c)
		}
		if got := kmsAlias(t, name); got != other.ID {
			t.Errorf("the conflicting Alias moved the alias to %q", got)
		}
		if a.Status.TargetKeyID != "" {
			t.Errorf("status.targetKeyID %s recorded for an alias the object does not own", a.Status.TargetKeyID)
		}
		// Deleting the object leaves someone else's alias alone.
		remove(t, a)
		waitGone(t, a)
		if got := kmsAlias(t, name); got != other.ID {
			t.Errorf("deleting the conflicting Alias changed the alias to %q", got)
		}
	})

	t.Run("declared twice", func(t *testing.T) {
		name := aliasName("twice")
		first := newAlias(nsMain, "al-twice-1", name, targetKey(key.Name))
		create(t, first)
		waitReady(t, first)
		// Latecomers, in the same namespace and in another tenant's, each
		// pointing at a key of its own.
		var dups []*kmsv1alpha1.Alias
		for i, ns := range []string{nsMain, nsOther} {
			k := readyKey(t, ns, fmt.Sprintf("al-twice-key-%d", i))
			dups = append(dups, newAlias(ns, fmt.Sprintf("al-twice-%d", i+2), name, targetKey(k.Name)))
		}
		for _, d := range dups {
			create(t, d)
		}
		check := func(when string) {
			t.Helper()
			for _, d := range dups {
				waitCondition(t, d, kmsv1alpha1.ConditionSynced, metav1.ConditionFalse, kmsv1alpha1.ReasonConflict)
				if d.Status.TargetKeyID != "" {
					t.Errorf("%s: %s/%s recorded the alias: %+v", when, d.Namespace, d.Name, d.Status)
				}
			}
			if got := kmsAlias(t, name); got != key.Status.KeyID {
				t.Errorf("%s: the alias was moved to %q", when, got)
			}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(first), first); err != nil {
				t.Fatal(err)
			}
			if c := conditionOf(first, kmsv1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue || first.Status.TargetKeyID != key.Status.KeyID {
				t.Errorf("%s: the first Alias lost it: Ready %+v, status %+v", when, c, first.Status)
			}
		}
		check("at once")
		time.Sleep(4500 * time.Millisecond) // every object resyncs once
		check("after a resync")

		for _, d := range dups {
			remove(t, d)
		}
		for _, d := range dups {
			waitGone(t, d)
		}
		if got := kmsAlias(t, name); got != key.Status.KeyID {
			t.Errorf("deleting the latecomers changed the alias to %q", got)
		}
		remove(t, first)
		waitGone(t, first)
		waitAlias(t, name, "", "the alias to go with its owner")
	})
}

// TestAliasKeyDeleted: an Alias whose Key goes waits for it, and follows a new
// Key of the same name.
func TestAliasKeyDeleted(t *testing.T) {
	explainFailure(t)
	name := aliasName("phoenix")
	// The Key's deletion would wait for the Alias: this test is about the
	// Alias of a Key gone anyway.
	key := newKey(nsMain, "al-phoenix", func(k *kmsv1alpha1.Key) {
		k.Spec.DeletionProtection = &kmsv1alpha1.KeyDeletionProtection{References: kmsv1alpha1.ReferencesIgnore}
	})
	create(t, key)
	waitReady(t, key)
	oldID := key.Status.KeyID
	a := newAlias(nsMain, "al-phoenix", name, targetKey(key.Name))
	create(t, a)
	waitReady(t, a)

	remove(t, key)
	waitGone(t, key)
	waitCondition(t, a, kmsv1alpha1.ConditionReady, metav1.ConditionFalse, kmsv1alpha1.ReasonWaitingForKey)
	if c := conditionOf(a, kmsv1alpha1.ConditionSynced); c == nil || c.Reason != kmsv1alpha1.ReasonWaitingForKey || !strings.Contains(c.Message, key.Name) {
		t.Errorf("Synced = %+v, want WaitingForKey naming the Key", c)
	}

	again := readyKey(t, nsMain, "al-phoenix")
	if again.Status.KeyID == oldID {
		t.Fatal("the new Key has the old key id")
	}
	waitReady(t, a)
	if a.Status.TargetKeyID != again.Status.KeyID {
		t.Errorf("status.targetKeyID %s, want the new key %s", a.Status.TargetKeyID, again.Status.KeyID)
	}
	waitAlias(t, name, again.Status.KeyID, "the alias to follow the new Key")
}

const grantee = "arn:aws:iam::111122223333:role/e2e-app"

// TestGrantLifecycle creates a grant, replaces it without a moment without
// access, has it re-created after a revoke outside, and revokes it on delete.
func TestGrantLifecycle(t *testing.T) {
	explainFailure(t)
	ctx := context.Background()
	key := readyKey(t, nsMain, "gr-life")
	keyID := key.Status.KeyID
	g := newGrant(nsMain, "gr-life", func(g *kmsv1alpha1.Grant) {
		g.Spec.KeyRef = &kmsv1alpha1.LocalObjectReference{Name: key.Name}
		g.Spec.GranteePrincipal = grantee
		g.Spec.RetiringPrincipal = "arn:aws:iam::111122223333:role/e2e-retirer"
		g.Spec.Operations = []kmsv1alpha1.GrantOperation{"Decrypt", "Encrypt"}
		g.Spec.Constraints = &kmsv1alpha1.GrantConstraints{EncryptionContextSubset: map[string]string{"app": "e2e"}}
	})
	create(t, g)
	waitReady(t, g)
	name := "kms-operator-" + string(g.UID)
	grants := listGrants(t, keyID)
	if len(grants) != 1 {
		t.Fatalf("%d grants on the key, want 1: %+v", len(grants), grants)
	}
	gr := grants[0]
	if gr.Name != name || gr.GranteePrincipal != grantee || gr.RetiringPrincipal != g.Spec.RetiringPrincipal ||
		!slices.Equal(slices.Sorted(slices.Values(gr.Operations)), []string{"Decrypt", "Encrypt"}) ||
		!maps.Equal(gr.EncryptionContextSubset, map[string]string{"app": "e2e"}) || gr.EncryptionContextEquals != nil {
		t.Errorf("KMS grant %+v does not match the spec (name %s)", gr, name)
	}
	if g.Status.GrantID != gr.GrantID || g.Status.KeyID != keyID {
		t.Errorf("status %+v, want grantID %s on key %s", g.Status, gr.GrantID, keyID)
	}

	// KMS grants cannot change: a change of operations replaces the grant,
	// the new one first. Decrypt is in every version, so the grantee must be
	// able to decrypt at every moment.
	for i, ops := range [][]kmsv1alpha1.GrantOperation{{"Decrypt", "GenerateDataKey"}, {"ReEncryptFrom", "Decrypt"}} {
		t.Run(fmt.Sprintf("replace without a gap %d", i+1), func(t *testing.T) {
			oldID := g.Status.GrantID
			var mu sync.Mutex
			var observations, throttled int
			var gaps, errs []string
			stop, done := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(done)
				for {
					grants, err := kms.ListGrants(ctx, keyID)
					mu.Lock()
					switch {
					case kmsclient.ClassOf(err) == kmsclient.Throttled:
						throttled++
					case err != nil:
						errs = append(errs, err.Error())
					default:
						observations++
						if !slices.ContainsFunc(grants, func(gr kmsclient.Grant) bool {
							return gr.GranteePrincipal == grantee && slices.Contains(gr.Operations, "Decrypt")
						}) {
							gaps = append(gaps, fmt.Sprintf("%+v", grants))
						}
					}
					mu.Unlock()
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
				}
			}()
			time.Sleep(50 * time.Millisecond) // some observations of the old grant
			update(t, g, func(g *kmsv1alpha1.Grant) { g.Spec.Operations = ops })
			eventually(t, "the grant to be replaced", func() (bool, string) {
				if err := k8s.Get(ctx, client.ObjectKeyFromObject(g), g); err != nil {
					return false, err.Error()
				}
				c := conditionOf(g, kmsv1alpha1.ConditionReady)
				return c != nil && c.Status == metav1.ConditionTrue && g.Status.GrantID != oldID, fmt.Sprintf("status %+v", g.Status)
			})
			time.Sleep(50 * time.Millisecond)
			close(stop)
			<-done
			t.Logf("%d observations of the grants during the replacement (%d throttled)", observations, throttled)
			if len(errs) > 0 {
				t.Errorf("ListGrants failed during the replacement: %v", errs)
			}
			if len(gaps) > 0 || observations < 20 {
				t.Errorf("%d of %d observations without a Decrypt grant for the grantee, first: %v", len(gaps), observations, gaps)
			}
			grants := listGrants(t, keyID)
			want := slices.Sorted(slices.Values(grantOps(ops)))
			if len(grants) != 1 || grants[0].GrantID != g.Status.GrantID || grants[0].GrantID == oldID ||
				!slices.Equal(slices.Sorted(slices.Values(grants[0].Operations)), want) {
				t.Errorf("after the replacement: grants %+v, status.grantID %s, old %s", grants, g.Status.GrantID, oldID)
			}
			// The gap a revoke-first would leave lasts a millisecond or two, which
			// polling may miss: the operator's events, stamped to the microsecond
			// as it makes the calls, say which came first.
			var created, revoked time.Time
			eventually(t, "the Created and Revoked events", func() (bool, string) {
				created = grantEventTime(t, g.Name, "Created", g.Status.GrantID)
				revoked = grantEventTime(t, g.Name, "Revoked", oldID)
				return !created.IsZero() && !revoked.IsZero(), fmt.Sprintf("created %v, revoked %v", created, revoked)
			})
			if !created.Before(revoked) {
				t.Errorf("grant %s revoked at %s, before its replacement %s was created at %s",
					oldID, revoked.Format(time.StampMicro), g.Status.GrantID, created.Format(time.StampMicro))
			}
		})
	}

	t.Run("revoked outside", func(t *testing.T) {
		oldID := g.Status.GrantID
		if err := kms.RevokeGrant(ctx, keyID, oldID); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the grant to be re-created", func() (bool, string) {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(g), g); err != nil {
				return false, err.Error()
			}
			return g.Status.GrantID != oldID && g.Status.GrantID != "", fmt.Sprintf("status %+v", g.Status)
		})
		grants := listGrants(t, keyID)
		if len(grants) != 1 || grants[0].GrantID != g.Status.GrantID || grants[0].Name != name {
			t.Errorf("after re-creation: grants %+v, status.grantID %s", grants, g.Status.GrantID)
		}
	})

	t.Run("no token in status or events", func(t *testing.T) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(kmsv1alpha1.GroupVersion.WithKind("Grant"))
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(g), u); err != nil {
			t.Fatal(err)
		}
		status, _, _ := unstructured.NestedMap(u.Object, "status")
		for field := range status {
			switch field {
			case "grantID", "keyID", "keyARN", "observedGeneration", "conditions":
			default:
				t.Errorf("status has undocumented field %q: %v", field, status[field])
			}
		}
		if status["grantID"] == nil {
			t.Errorf("status has no grantID: %v", status)
		}
		raw, err := json.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		if s := tokenLike(string(raw)); s != "" {
			t.Errorf("the Grant object holds a token-like string %q", s)
		}

		evs := namespaceEvents(t, nsMain)
		ours := map[string]bool{}
		for _, e := range evs {
			if strings.Contains(strings.ToLower(e.note), "token") {
				t.Errorf("%s event %s about %s %s mentions a token: %q", e.api, e.reason, e.kind, e.name, e.note)
			}
			if s := tokenLike(e.note); s != "" {
				t.Errorf("%s event %s about %s %s holds a token-like string %q", e.api, e.reason, e.kind, e.name, s)
			}
			if e.kind == "Grant" && e.name == g.Name && e.reason == "Created" {
				ours[e.api] = true
			}
		}
		// The check means something only if it saw the grant's own events.
		if !ours["core/v1"] || !ours["events.k8s.io/v1"] {
			t.Errorf("Created events of %s found through %v; want both APIs", g.Name, ours)
		}
	})

	revokes := kmsCounts(t)["RevokeGrant"].Requests
	remove(t, g)
	waitGone(t, g)
	if left := grantsNamed(t, keyID, name); len(left) != 0 {
		t.Errorf("grants left after the delete: %+v", left)
	}
	if n := kmsCounts(t)["RevokeGrant"].Requests - revokes; n < 1 {
		t.Errorf("deleted without RevokeGrant")
	}
}

var tokenPattern = regexp.MustCompile(`[A-Za-z0-9+/_=-]{101,}`)

func grantOps(ops []kmsv1alpha1.GrantOperation) []string {
	out := make([]string, 0, len(ops))
	for _, op := range ops {
		out = append(out, string(op))
	}
	return out
}

// grantEventTime is when the operator emitted the event with this reason
// about the Grant, naming grantID; zero if there is none (yet).
func grantEventTime(t *testing.T, name, reason, grantID string) time.Time {
	t.Helper()
	var evs eventsv1.EventList
	if err := k8s.List(context.Background(), &evs, client.InNamespace(nsMain)); err != nil {
		t.Fatalf("listing events: %v", err)
	}
	for _, e := range evs.Items {
		if e.Regarding.Kind == "Grant" && e.Regarding.Name == name && e.Reason == reason && strings.Contains(e.Note, grantID) {
			return e.EventTime.Time
		}
	}
	return time.Time{}
}

// tokenLike returns the first base64-looking run of over 100 characters in s:
// grant ids, key ids and ARNs are shorter, grant tokens are longer.
func tokenLike(s string) string { return tokenPattern.FindString(s) }

func TestGrantRetireOnDelete(t *testing.T) {
	explainFailure(t)
	key := readyKey(t, nsMain, "gr-retire")
	name := "e2e-retire-" + runID
	g := newGrant(nsMain, "gr-retire", func(g *kmsv1alpha1.Grant) {
		g.Spec.KeyRef = &kmsv1alpha1.LocalObjectReference{Name: key.Name}
		g.Spec.GranteePrincipal = grantee
		g.Spec.Operations = []kmsv1alpha1.GrantOperation{"Decrypt"}
		g.Spec.Name = name
		g.Spec.OnDelete = kmsv1alpha1.GrantOnDeleteRetire
	})
	create(t, g)
	waitReady(t, g)
	if got := grantsNamed(t, key.Status.KeyID, name); len(got) != 1 || got[0].GrantID != g.Status.GrantID {
		t.Fatalf("grants named %s: %+v, status.grantID %s", name, got, g.Status.GrantID)
	}

	before := kmsCounts(t)
	remove(t, g)
	waitGone(t, g)
	after := kmsCounts(t)
	if left := grantsNamed(t, key.Status.KeyID, name); len(left) != 0 {
		t.Errorf("grants left after the delete: %+v", left)
	}
	if n := after["RetireGrant"].Requests - before["RetireGrant"].Requests; n < 1 {
		t.Errorf("onDelete Retire made %d RetireGrant calls", n)
	}
	if n := after["RevokeGrant"].Requests - before["RevokeGrant"].Requests; n != 0 {
		t.Errorf("onDelete Retire made %d RevokeGrant calls", n)
	}
	reasons := eventReasons(t, nsMain, "Grant", g.Name)
	if !reasons["Retired"] || reasons["Revoked"] {
		t.Errorf("event reasons %v, want Retired and no Revoked", reasons)
	}
}

// TestAliasGrantTenancy: raw key ids are checked against the tenancy rules.
func TestAliasGrantTenancy(t *testing.T) {
	explainFailure(t)
	foreign := readyKey(t, nsOther, "tenant-key")
	unmanaged := createUnmanaged(t, "referenced by id")

	cases := []struct {
		what   string
		obj    object
		reason string // "" for Ready
		msg    string
	}{
		{"Grant on another namespace's key", newGrant(nsMain, "gr-foreign", func(g *kmsv1alpha1.Grant) {
			g.Spec.KeyID = foreign.Status.KeyID
			g.Spec.GranteePrincipal = grantee
			g.Spec.Operations = []kmsv1alpha1.GrantOperation{"Decrypt"}
		}), kmsv1alpha1.ReasonReferenceRefused, "another namespace"},
		{"Alias on an unmanaged key, flag off", newAlias(nsMain, "al-unmanaged", aliasName("unmanaged-refused"), func(a *kmsv1alpha1.Alias) {
			a.Spec.TargetKeyID = unmanaged.ID
		}), kmsv1alpha1.ReasonReferenceRefused, "--allow-unmanaged-key-references"},
		{"Alias on an unmanaged key, flag on", newAlias(nsOpen, "al-unmanaged", aliasName("unmanaged-allowed"), func(a *kmsv1alpha1.Alias) {
			a.Spec.TargetKeyID = unmanaged.ID
		}), "", ""},
	}
	for _, c := range cases {
		create(t, c.obj)
	}
	for _, c := range cases {
		t.Run(c.what, func(t *testing.T) {
			if c.reason == "" {
				waitReady(t, c.obj)
				return
			}
			waitCondition(t, c.obj, kmsv1alpha1.ConditionSynced, metav1.ConditionFalse, c.reason)
			if cond := conditionOf(c.obj, kmsv1alpha1.ConditionSynced); !strings.Contains(cond.Message, c.msg) {
				t.Errorf("message %q does not say %q", cond.Message, c.msg)
			}
			if cond := conditionOf(c.obj, kmsv1alpha1.ConditionReady); cond == nil || cond.Status != metav1.ConditionFalse {
				t.Errorf("Ready = %+v for a refused reference", cond)
			}
		})
	}
	// What KMS shows for each.
	if got := listGrants(t, foreign.Status.KeyID); len(got) != 0 {
		t.Errorf("grants on the other namespace's key: %+v", got)
	}
	if got := kmsAlias(t, aliasName("unmanaged-refused")); got != "" {
		t.Errorf("refused alias exists, pointing at %s", got)
	}
	if got := kmsAlias(t, aliasName("unmanaged-allowed")); got != unmanaged.ID {
		t.Errorf("allowed alias points at %q, want %s", got, unmanaged.ID)
	}
	for _, c := range cases {
		remove(t, c.obj)
	}
	for _, c := range cases {
		waitGone(t, c.obj)
	}
	if got := kmsAlias(t, aliasName("unmanaged-allowed")); got != "" {
		t.Errorf("alias left after its Alias was deleted, pointing at %s", got)
	}
}
