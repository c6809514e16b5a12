package controllers

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
)

// TestKeyLastUsageStatus: status.lastUsage is read when the flag or the spec
// asks for it, at most once per sync period, and not for a key just made.
func TestKeyLastUsageStatus(t *testing.T) {
	type step struct {
		what    string
		do      func(t *testing.T, e *keyEnv)
		reads   int    // GetKeyLastUsage calls of the reconcile
		lastUse string // status.lastUsage.operation, "-" for no lastUsage
	}
	reconcile := func(*testing.T, *keyEnv) {}
	cases := map[string]struct {
		reason string
		flag   bool
		key    *kmsv1alpha1.Key
		steps  []step
	}{
		"Flag": {
			reason: "--read-key-last-usage reads it at the first resync after creation, then once per sync period.",
			flag:   true,
			key:    newKey(),
			steps: []step{
				{"creation", reconcile, 0, "-"},
				{"first resync", reconcile, 1, ""},
				{"a use, then a reconcile within the period", func(t *testing.T, e *keyEnv) { use(t, e, firstKeyID) }, 0, ""},
				{"a new process (or a sync period later)", func(_ *testing.T, e *keyEnv) { e.restart() }, 1, "Encrypt"},
			},
		},
		"Protection": {
			reason: "deletionProtection.unusedForDays asks for it without the flag.",
			key:    newKey(withProtection(30, "")),
			steps:  []step{{"creation", reconcile, 0, "-"}, {"first resync", reconcile, 1, ""}},
		},
		"NeitherAsks": {
			reason: "Without the flag or a usage guard, no call, and no stale lastUsage in status.",
			key: newKey(func(k *kmsv1alpha1.Key) {
				k.Status.LastUsage = &kmsv1alpha1.KeyLastUsage{Operation: "Decrypt"}
			}),
			steps: []step{{"creation", reconcile, 0, "-"}, {"resync", reconcile, 0, "-"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := newKeyEnv(t, tc.key)
			e.opts.ReadKeyLastUsage = tc.flag
			e.restart()
			for _, s := range tc.steps {
				s.do(t, e)
				e.kms.ResetCalls()
				if res := e.mustReconcile(); requeue(res) != "resync" {
					t.Errorf("%s: %s: requeue %s", tc.reason, s.what, requeue(res))
				}
				got := step{what: s.what, reads: countOf(e.kms.Calls(), "GetKeyLastUsage"), lastUse: "-"}
				if u := e.get().Status.LastUsage; u != nil {
					got.lastUse = u.Operation
				}
				if got.reads != s.reads || got.lastUse != s.lastUse {
					t.Errorf("%s\n%s: %d reads, lastUsage %q; want %d, %q", tc.reason, s.what, got.reads, got.lastUse, s.reads, s.lastUse)
				}
			}
		})
	}
}

// TestKeyLastUsageFields: status.lastUsage shows what KMS reports, to the
// second, with the CloudTrail event to look it up.
func TestKeyLastUsageFields(t *testing.T) {
	e := newKeyEnv(t, newKey())
	e.opts.ReadKeyLastUsage = true
	e.restart()
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	e.kms.Now = func() time.Time { return at }
	id := e.create()
	use(t, e, id)
	e.kms.Now = time.Now
	e.mustReconcile()
	u := e.get().Status.LastUsage
	if u == nil || u.Time == nil || u.TrackingStartDate == nil {
		t.Fatalf("status.lastUsage %+v", u)
	}
	got := []any{u.Operation, u.Time.Time.Equal(at), u.CloudTrailEventID != "", u.TrackingStartDate.Time.Equal(at)}
	if diff := cmp.Diff([]any{"Encrypt", true, true, true}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func countOf(calls []string, op string) int {
	n := 0
	for c := range slices.Values(calls) {
		if c == op {
			n++
		}
	}
	return n
}
