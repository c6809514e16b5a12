package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// The first key the fake creates.
const firstKeyID = "00000001-0000-4000-8000-000000000001"

func TestUsageHold(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	days := func(n int) time.Time { return now.AddDate(0, 0, -n) }
	used := func(n int) *time.Time { t := days(n); return &t }
	cases := map[string]struct {
		reason string
		usage  kmsclient.LastUsage
		want   string // a part of the message; "" lets the deletion go
	}{
		"UsedRecently": {
			reason: "A use within the period holds, and says when the key may go if it stays unused.",
			usage:  kmsclient.LastUsage{Operation: "Decrypt", Time: used(3), TrackingStart: days(400), KeyCreation: days(400), At: now},
			want:   "was last used (Decrypt) at 2026-11-28T12:00:00Z, within the 30 days of spec.deletionProtection.unusedForDays: its deletion is not scheduled. Unused from now on, it can be on 2026-12-28T12:00:00Z",
		},
		"UsedBeforeThePeriod": {
			reason: "A last use longer ago than the period lets the deletion go.",
			usage:  kmsclient.LastUsage{Operation: "Decrypt", Time: used(31), TrackingStart: days(400), KeyCreation: days(400), At: now},
		},
		"PeriodOnKMSClock": {
			reason: "The period is counted on KMS's clock: a use 31 days before KMS's now lets go whatever the local clock says.",
			usage: kmsclient.LastUsage{Operation: "Encrypt", Time: ptrTime(time.Now().AddDate(0, 0, 9)), TrackingStart: days(400), KeyCreation: days(400),
				At: time.Now().AddDate(0, 0, 40)},
		},
		"NeverUsed": {
			reason: "No use recorded since creation, tracked since creation: never used.",
			usage:  kmsclient.LastUsage{TrackingStart: days(2), KeyCreation: days(2), At: now},
		},
		"NotTrackingYet": {
			reason: "While KMS does not track yet, nothing shows the key unused: the deletion waits and says so.",
			usage:  kmsclient.LastUsage{TrackingStart: now.AddDate(0, 0, 5), KeyCreation: days(100), At: now},
			want:   "KMS does not track the use of key k yet (it starts on 2026-12-06T12:00:00Z)",
		},
		"OlderThanTracking": {
			reason: "A key older than KMS's tracking, unused since tracking began less than the period ago, may have been used before: it waits.",
			usage:  kmsclient.LastUsage{TrackingStart: days(10), KeyCreation: days(100), At: now},
			want:   "may have been used before (CloudTrail tells): unused for the 30 days of spec.deletionProtection.unusedForDays can be known on 2026-12-21T12:00:00Z",
		},
		"TrackedLongEnough": {
			reason: "A key unused since tracking began more than the period ago goes.",
			usage:  kmsclient.LastUsage{TrackingStart: days(31), KeyCreation: days(100), At: now},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := usageHold(&tc.usage, "k", 30)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("%s\ngot %q\nwant it to contain %q", tc.reason, got, tc.want)
			}
			if got != "" && !strings.HasSuffix(got, "remove spec.deletionProtection.unusedForDays") {
				t.Errorf("%s\n%q does not say how to delete the key now", tc.reason, got)
			}
		})
	}
}

func ptrTime(t time.Time) *time.Time { return &t }

func withProtection(days int32, refs kmsv1alpha1.ReferencesPolicy) func(*kmsv1alpha1.Key) {
	return func(k *kmsv1alpha1.Key) {
		k.Spec.DeletionProtection = &kmsv1alpha1.KeyDeletionProtection{UnusedForDays: days, References: refs}
	}
}

func aliasTo(name, keyRef string, mutate ...func(*kmsv1alpha1.Alias)) *kmsv1alpha1.Alias {
	a := &kmsv1alpha1.Alias{ObjectMeta: metav1.ObjectMeta{Namespace: keyTestNS, Name: name},
		Spec: kmsv1alpha1.AliasSpec{Name: "alias/" + name, TargetKeyRef: &kmsv1alpha1.LocalObjectReference{Name: keyRef}}}
	for _, m := range mutate {
		m(a)
	}
	return a
}

// grantByID is a Grant of team-a naming a key by raw id, as recorded once
// reconciled.
func grantByID(name, keyID, region string) *kmsv1alpha1.Grant {
	return &kmsv1alpha1.Grant{ObjectMeta: metav1.ObjectMeta{Namespace: keyTestNS, Name: name},
		Spec:   kmsv1alpha1.GrantSpec{KeyID: keyID, GranteePrincipal: testGrantee, Operations: []kmsv1alpha1.GrantOperation{"Decrypt"}},
		Status: kmsv1alpha1.GrantStatus{KeyID: keyID, KeyARN: "arn:aws:kms:" + region + ":111122223333:key/" + keyID}}
}

func TestKeyDeletionGuard(t *testing.T) {
	denied := kmsclient.NewError("GetKeyLastUsage", kmsclient.AccessDenied, "AccessDeniedException", "not allowed")
	cases := map[string]struct {
		reason string
		key    *kmsv1alpha1.Key
		// referrers are other objects of the namespace.
		referrers []client.Object
		setup     func(t *testing.T, e *keyEnv, id string)
		calls     []string
		// held is the reason the deletion is held with; "" for released.
		held       string
		message    string // a part of the Synced message
		events     []string
		lastUsedOp string // status.lastUsage.operation afterwards
	}{
		"UsedRecently": {
			reason: "A protected key used within the period is not scheduled: a condition and an event say when it was used and what to do.",
			key:    newKey(withProtection(30, "")),
			setup:  func(t *testing.T, e *keyEnv, id string) { use(t, e, id) },
			calls:  []string{"DescribeKey", "GetKeyLastUsage"}, held: kmsv1alpha1.ReasonDeletionProtected,
			message: "was last used (Encrypt) at", events: []string{"Warning DeletionProtected"}, lastUsedOp: "Encrypt",
		},
		"UsedLongAgo": {
			reason: "A key last used before the period (by KMS's clock) is scheduled.",
			key:    newKey(withProtection(7, "")),
			setup: func(t *testing.T, e *keyEnv, id string) {
				use(t, e, id)
				e.kms.Now = func() time.Time { return time.Now().AddDate(0, 0, 10) }
			},
			calls: []string{"DescribeKey", "GetKeyLastUsage", "ScheduleKeyDeletion"}, events: []string{"Normal DeletionScheduled"},
		},
		"NeverUsed": {
			reason: "A key KMS tracked since its creation and never saw used is scheduled.",
			key:    newKey(withProtection(30, "")),
			setup:  func(*testing.T, *keyEnv, string) {},
			calls:  []string{"DescribeKey", "GetKeyLastUsage", "ScheduleKeyDeletion"}, events: []string{"Normal DeletionScheduled"},
		},
		"NotTrackingYet": {
			reason: "Without last-usage data (KMS not tracking yet) the guard holds and says so.",
			key:    newKey(withProtection(30, "")),
			setup: func(_ *testing.T, e *keyEnv, _ string) {
				e.kms.SetTrackingStart(time.Now().AddDate(0, 0, 3))
			},
			calls: []string{"DescribeKey", "GetKeyLastUsage"}, held: kmsv1alpha1.ReasonDeletionProtected,
			message: "KMS does not track the use of key " + firstKeyID + " yet", events: []string{"Warning DeletionProtected"},
		},
		"LastUsageDenied": {
			reason: "A refused GetKeyLastUsage holds the deletion as AccessDenied, retried.",
			key:    newKey(withProtection(30, "")),
			setup:  func(_ *testing.T, e *keyEnv, _ string) { e.kms.Fail("GetKeyLastUsage", denied, 1) },
			calls:  []string{"DescribeKey", "GetKeyLastUsage"}, held: kmsv1alpha1.ReasonAccessDenied,
			message: "not allowed", events: []string{"Warning AccessDenied"},
		},
		"Referenced": {
			reason: "A Key referenced by an Alias (by name) and a Grant (by key id) waits and names them; no KMS call but the DescribeKey.",
			key:    newKey(),
			referrers: []client.Object{aliasTo("a1", keyTestName), grantByID("g1", firstKeyID, "us-east-1"),
				aliasTo("elsewhere", "other-key"), grantByID("g-other-region", firstKeyID, "eu-west-1")},
			calls: []string{"DescribeKey"}, held: kmsv1alpha1.ReasonStillReferenced,
			message: "still referenced by Alias a1, Grant g1 in namespace team-a", events: []string{"Warning StillReferenced"},
		},
		"ReferencedAndUsed": {
			reason:    "References are checked first, at no KMS call.",
			key:       newKey(withProtection(30, "")),
			referrers: []client.Object{aliasTo("a1", keyTestName)},
			setup:     func(t *testing.T, e *keyEnv, id string) { use(t, e, id) },
			calls:     []string{"DescribeKey"}, held: kmsv1alpha1.ReasonStillReferenced,
			message: "Alias a1", events: []string{"Warning StillReferenced"},
		},
		"ReferrerBeingDeleted": {
			reason: "An Alias being deleted holds nothing: it is on its way out.",
			key:    newKey(),
			referrers: []client.Object{aliasTo("a1", keyTestName, func(a *kmsv1alpha1.Alias) {
				a.Finalizers = []string{kmsv1alpha1.Finalizer}
				a.DeletionTimestamp = &metav1.Time{Time: time.Now()}
			})},
			calls: []string{"DescribeKey", "ScheduleKeyDeletion"}, events: []string{"Normal DeletionScheduled"},
		},
		"ReferencesIgnored": {
			reason:    "references: Ignore schedules the deletion and leaves the referencing objects alone.",
			key:       newKey(withProtection(0, kmsv1alpha1.ReferencesIgnore)),
			referrers: []client.Object{aliasTo("a1", keyTestName)},
			calls:     []string{"DescribeKey", "ScheduleKeyDeletion"}, events: []string{"Normal DeletionScheduled"},
		},
		"Retain": {
			reason:    "Retain deletes nothing: no guard, no GetKeyLastUsage.",
			key:       newKey(withProtection(30, ""), func(k *kmsv1alpha1.Key) { k.Spec.DeletionPolicy = kmsv1alpha1.DeletionPolicyRetain }),
			referrers: []client.Object{aliasTo("a1", keyTestName)},
			setup:     func(t *testing.T, e *keyEnv, id string) { use(t, e, id) },
			calls:     []string{"UntagResource"}, events: []string{"Normal Retained"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			e := newKeyEnv(t, append(tc.referrers, tc.key)...)
			id := e.create()
			if tc.setup != nil {
				tc.setup(t, e, id)
			}
			if err := e.c.Delete(ctx, e.get()); err != nil {
				t.Fatal(err)
			}
			e.kms.ResetCalls()
			drainEvents(e.rec)

			res, err := e.reconcile()
			if diff := cmp.Diff(tc.calls, e.kms.Calls()); diff != "" {
				t.Errorf("%s\ncalls (-want +got):\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.events, drainEvents(e.rec)); diff != "" {
				t.Errorf("%s\nevents (-want +got):\n%s", tc.reason, diff)
			}
			k := e.get()
			if tc.held == "" {
				if err != nil || k != nil {
					t.Errorf("%s\nreconcile: %v; object left: %v", tc.reason, err, k != nil)
				}
				return
			}
			if k == nil {
				t.Fatalf("%s\nthe object was released", tc.reason)
			}
			if state := e.kmsKey(id).State; kmsclient.PendingDeletion(state) {
				t.Errorf("%s\nthe key was scheduled for deletion (%s)", tc.reason, state)
			}
			if got := condition(k.Status.Conditions, kmsv1alpha1.ConditionReady); got != "False/"+tc.held {
				t.Errorf("%s\nReady %s, want False/%s", tc.reason, got, tc.held)
			}
			if c := findCondition(k, kmsv1alpha1.ConditionSynced); c == nil || c.Reason != tc.held || !strings.Contains(c.Message, tc.message) {
				t.Errorf("%s\nSynced %+v, want %s saying %q", tc.reason, c, tc.held, tc.message)
			}
			retried := err != nil
			if wantRetry := tc.held == kmsv1alpha1.ReasonAccessDenied; retried != wantRetry || (!retried && requeue(res) != "resync") {
				t.Errorf("%s\nreconcile: %v, requeue %s; a held deletion waits for the resync, an error is retried", tc.reason, err, requeue(res))
			}
			if got := lastUsedOp(k); got != tc.lastUsedOp {
				t.Errorf("%s\nstatus.lastUsage.operation %q, want %q", tc.reason, got, tc.lastUsedOp)
			}
		})
	}
}

// TestKeyDeletionProtectionRemoved: the guard holds with an event at every
// reconcile, and the key is scheduled once the protection is removed.
func TestKeyDeletionProtectionRemoved(t *testing.T) {
	e := newKeyEnv(t, newKey(withProtection(30, "")))
	id := e.create()
	use(t, e, id)
	if err := e.c.Delete(context.Background(), e.get()); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		e.mustReconcile()
		if got := drainEvents(e.rec); !cmp.Equal(got, []string{"Warning DeletionProtected"}) {
			t.Errorf("reconcile %d: events %v, want one DeletionProtected each time the guard holds", i+1, got)
		}
	}
	e.updateSpec(func(k *kmsv1alpha1.Key) { k.Spec.DeletionProtection = nil })
	e.mustReconcile()
	if k := e.get(); k != nil {
		t.Fatalf("the object stays after the protection was removed: %+v", k.Status.Conditions)
	}
	if state := e.kmsKey(id).State; state != kmsclient.StatePendingDeletion {
		t.Errorf("key %s, want PendingDeletion", state)
	}
	if got := drainEvents(e.rec); !cmp.Equal(got, []string{"Normal DeletionScheduled"}) {
		t.Errorf("events %v", got)
	}
}

// use encrypts with key id as an application would, calls forgotten.
func use(t *testing.T, e *keyEnv, id string) {
	t.Helper()
	if err := e.kms.UseKey(context.Background(), id, "Encrypt"); err != nil {
		t.Fatal(err)
	}
	e.kms.ResetCalls()
}

func lastUsedOp(k *kmsv1alpha1.Key) string {
	if k.Status.LastUsage == nil {
		return ""
	}
	return k.Status.LastUsage.Operation
}
