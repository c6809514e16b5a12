package controllers

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/api/meta"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
	"github.com/kmsoperator/kms-operator/internal/kmsclient/kmsfake"
)

func TestKeyObserve(t *testing.T) {
	cases := map[string]struct {
		reason string
		spec   []func(*kmsv1alpha1.Key)
		calls  []string
		ready  string
		msg    string
		events []string
	}{
		"Matches": {
			reason: "An observed key matching the spec is Ready, though the operator never tagged it as its own.",
			spec:   []func(*kmsv1alpha1.Key){withDescription("legacy"), withTags(map[string]string{"team": "a"})},
			calls:  []string{"DescribeKey", "ListResourceTags", "GetKeyRotationStatus"},
			ready:  "True/Available",
			events: []string{"Normal Adopted"},
		},
		"Differs": {
			reason: "Differences are reported by aspect and never fixed.",
			spec: []func(*kmsv1alpha1.Key){withDescription("other"), withTags(map[string]string{"team": "b"}),
				withPolicy(keyPolicyOther), withRotation(365), withEnabled(false)},
			calls:  []string{"DescribeKey", "ListResourceTags", "GetKeyPolicy", "GetKeyRotationStatus"},
			ready:  "False/Drifted",
			msg:    "the KMS key differs from the spec in: description, policy, tags, rotation, disabled",
			events: []string{"Normal Adopted", "Warning Drifted"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := kmsfake.NewFakeProvider()
			id := func() string {
				k, err := p.Fake("").CreateKey(context.Background(), kmsclient.CreateKeyInput{
					Description: "legacy", Policy: keyPolicy, Tags: map[string]string{"team": "a"}})
				if err != nil {
					t.Fatal(err)
				}
				return k.ID
			}()
			e := newKeyEnv(t, newKey(append(tc.spec, withObserve(), withKeyID(id))...))
			e.useKMS(p, true)
			e.kms.ResetCalls()
			before := e.kms.Keys()

			for i := range 2 {
				res := e.mustReconcile()
				if diff := cmp.Diff(tc.calls, e.kms.Calls()); diff != "" {
					t.Errorf("%s\nreconcile %d: calls (-want +got):\n%s", tc.reason, i, diff)
				}
				e.kms.ResetCalls()
				k := e.get()
				ready := meta.FindStatusCondition(k.Status.Conditions, kmsv1alpha1.ConditionReady)
				got := []string{k.Status.KeyID, condition(k.Status.Conditions, kmsv1alpha1.ConditionReady),
					condition(k.Status.Conditions, kmsv1alpha1.ConditionSynced), requeue(res)}
				if diff := cmp.Diff([]string{id, tc.ready, "True/ObserveOnly", "resync"}, got); diff != "" {
					t.Errorf("%s\nreconcile %d: keyID, Ready, Synced, requeue (-want +got):\n%s", tc.reason, i, diff)
				}
				if tc.msg != "" && (ready == nil || ready.Message != tc.msg) {
					t.Errorf("%s\nreconcile %d: Ready %+v, want message %q", tc.reason, i, ready, tc.msg)
				}
				if len(k.Finalizers) != 0 {
					t.Errorf("%s\nreconcile %d: an observed key got finalizers %v", tc.reason, i, k.Finalizers)
				}
				// The report is made once, not at every resync.
				wantEvents := tc.events
				if i > 0 {
					wantEvents = nil
				}
				if diff := cmp.Diff(wantEvents, drainEvents(e.rec)); diff != "" {
					t.Errorf("%s\nreconcile %d: events (-want +got):\n%s", tc.reason, i, diff)
				}
			}
			if diff := cmp.Diff(before, e.kms.Keys()); diff != "" {
				t.Errorf("%s\nthe observed key changed (-before +after):\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(map[string]string{"team": "a"}, e.kmsTags(id)); diff != "" {
				t.Errorf("%s\nthe observed key's tags changed (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

func TestKeyErrors(t *testing.T) {
	throttled := kmsclient.NewError("", kmsclient.Throttled, "ThrottlingException", "Rate exceeded")
	transient := kmsclient.NewError("", kmsclient.Transient, "KMSInternalException", "internal error")
	invalid := kmsclient.NewError("", kmsclient.Invalid, "ValidationException", "1 validation error")
	invalidState := kmsclient.NewError("", kmsclient.InvalidState, "KMSInvalidStateException", "key is pending import")
	malformed := kmsclient.NewError("PutKeyPolicy", kmsclient.MalformedPolicy, "MalformedPolicyDocumentException", "Policy contains a statement with one or more invalid principals.")
	const gone = "0badc0de-0000-4000-8000-000000000000"

	type want struct {
		Err     bool // returned, so the workqueue backs off
		Synced  string
		Ready   string
		Requeue string
		Calls   []string
	}
	cases := map[string]struct {
		reason string
		key    *kmsv1alpha1.Key
		// created: the key is created first and the spec then changed.
		created bool
		change  func(*kmsv1alpha1.Key)
		setup   func(e *keyEnv)
		want    want
	}{
		"ThrottledWrite": {
			reason: "Throttling is retried with backoff.", created: true, change: withDescription("new"),
			setup: func(e *keyEnv) { e.kms.Fail("UpdateKeyDescription", throttled, 1) },
			want:  want{Err: true, Synced: "False/Throttled", Ready: "False/Throttled", Requeue: "none", Calls: plus(keyReads, "UpdateKeyDescription")},
		},
		"ThrottledRead": {
			reason: "Throttling of a read is retried with backoff; Ready keeps what the last observation of this generation said.", created: true,
			setup: func(e *keyEnv) { e.kms.Fail("DescribeKey", throttled, 1) },
			want:  want{Err: true, Synced: "False/Throttled", Ready: "True/Available", Requeue: "none", Calls: []string{"DescribeKey"}},
		},
		"TransientWrite": {
			reason: "A transient fault is retried with backoff.", created: true, change: withDescription("new"),
			setup: func(e *keyEnv) { e.kms.Fail("UpdateKeyDescription", transient, 1) },
			want:  want{Err: true, Synced: "False/ReconcileError", Ready: "False/ReconcileError", Requeue: "none", Calls: plus(keyReads, "UpdateKeyDescription")},
		},
		"TransientCreate": {
			reason: "A transient CreateKey fault is retried with backoff.",
			setup:  func(e *keyEnv) { e.kms.Fail("CreateKey", transient, 1) },
			want:   want{Err: true, Synced: "False/ReconcileError", Ready: "False/ReconcileError", Requeue: "none", Calls: []string{"GetResources", "CreateKey"}},
		},
		"InvalidWrite": {
			reason: "Invalid input is terminal: reported, looked at again at the resync.", created: true, change: withRotation(400),
			setup: func(e *keyEnv) { e.kms.Fail("EnableKeyRotation", invalid, 1) },
			want:  want{Synced: "False/InvalidSpec", Ready: "False/InvalidSpec", Requeue: "resync", Calls: plus(keyReads, "EnableKeyRotation")},
		},
		"InvalidStateWrite": {
			reason: "A forbidding key state is terminal.", created: true, change: withDescription("new"),
			setup: func(e *keyEnv) {
				e.ageKey()
				e.kms.Fail("UpdateKeyDescription", invalidState, 1)
			},
			want: want{Synced: "False/InvalidKeyState", Ready: "False/InvalidKeyState", Requeue: "resync", Calls: plus(keyReads, "UpdateKeyDescription")},
		},
		"InvalidStateRightAfterCreate": {
			reason: "KMSInvalidStateException right after the operator created the key may be KMS answering from before: a wait, not a verdict.", created: true, change: withDescription("new"),
			setup: func(e *keyEnv) { e.kms.Fail("UpdateKeyDescription", invalidState, 1) },
			want:  want{Err: true, Synced: "False/Propagating", Ready: "False/Propagating", Requeue: "none", Calls: plus(keyReads, "UpdateKeyDescription")},
		},
		"NotFoundRightAfterCreate": {
			reason: "NotFoundException for the key this process just created is a wait, not a missing key.", created: true,
			setup: func(e *keyEnv) {
				e.kms.Fail("DescribeKey", kmsclient.NewError("DescribeKey", kmsclient.NotFound, "NotFoundException", "Key does not exist"), 1)
			},
			want: want{Err: true, Synced: "False/Propagating", Ready: "True/Available", Requeue: "none", Calls: []string{"DescribeKey"}},
		},
		"MalformedPolicyInGrace": {
			reason: "A malformed policy is retried while IAM may be propagating a new principal.", created: true, change: withPolicy(keyPolicyOther),
			setup: func(e *keyEnv) { e.kms.Fail("PutKeyPolicy", malformed, 1) },
			want:  want{Err: true, Synced: "False/Propagating", Ready: "False/Propagating", Requeue: "none", Calls: plus(keyReads, "PutKeyPolicy")},
		},
		"MalformedPolicyAfterGrace": {
			reason: "A policy still malformed after the grace is an invalid spec.", created: true, change: withPolicy(keyPolicyOther),
			setup: func(e *keyEnv) {
				e.kms.Fail("PutKeyPolicy", malformed, 1)
				e.setWaitingSince(2, time.Now().Add(-3*time.Minute))
			},
			want: want{Synced: "False/InvalidSpec", Ready: "False/InvalidSpec", Requeue: "resync", Calls: plus(keyReads, "PutKeyPolicy")},
		},
		"MalformedPolicyOfOlderGeneration": {
			reason: "The grace starts again for a new generation of the spec.", created: true, change: withPolicy(keyPolicyOther),
			setup: func(e *keyEnv) {
				e.kms.Fail("PutKeyPolicy", malformed, 1)
				e.setWaitingSince(1, time.Now().Add(-3*time.Minute))
			},
			want: want{Err: true, Synced: "False/Propagating", Ready: "False/Propagating", Requeue: "none", Calls: plus(keyReads, "PutKeyPolicy")},
		},
		"InvalidPolicyJSONAtCreate": {
			reason: "A policy that is not JSON is refused before any KMS call.",
			key:    newKey(withPolicy(`{"Version":"2012-10-17","Statement":[`)),
			want:   want{Synced: "False/InvalidSpec", Ready: "False/InvalidSpec", Requeue: "resync"},
		},
		"InvalidPolicyJSONOnUpdate": {
			reason: "A policy changed to something that is not JSON is refused before any KMS call.", created: true,
			change: withPolicy(`{"Statement": "nope"`),
			want:   want{Synced: "False/InvalidSpec", Ready: "False/InvalidSpec", Requeue: "resync"},
		},
		"KeyGone": {
			reason: "A key recorded in status that no longer exists is reported, not re-created nor retried hot.",
			key: newKey(func(k *kmsv1alpha1.Key) {
				k.Finalizers = []string{kmsv1alpha1.Finalizer}
				k.Status.KeyID = gone
			}),
			want: want{Synced: "False/NotFound", Ready: "False/NotFound", Requeue: "resync", Calls: []string{"DescribeKey"}},
		},
		"ExternalOrigin": {
			reason: "An EXTERNAL key waits for its material: not Ready, but the spec is applied.",
			key:    newKey(withDescription("byok"), func(k *kmsv1alpha1.Key) { k.Spec.Origin = kmsv1alpha1.OriginExternal }),
			want:   want{Synced: "True/ReconcileSuccess", Ready: "False/InvalidKeyState", Requeue: "resync", Calls: []string{"GetResources", "CreateKey"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			key := tc.key
			if key == nil {
				key = newKey(withDescription("old"), withPolicy(keyPolicy), withRotation(180))
			}
			e := newKeyEnv(t, key)
			// KMS made the keys an hour ago; only this process's memory of
			// its own writes (ageKey forgets it) makes them recent.
			e.kms.Now = func() time.Time { return time.Now().Add(-time.Hour) }
			if tc.created {
				e.create()
			}
			if tc.change != nil {
				e.updateSpec(tc.change)
			}
			if tc.setup != nil {
				tc.setup(e)
			}
			before := e.get()

			res, err := e.reconcile()
			k := e.get()
			got := want{
				Err:     err != nil,
				Synced:  condition(k.Status.Conditions, kmsv1alpha1.ConditionSynced),
				Ready:   condition(k.Status.Conditions, kmsv1alpha1.ConditionReady),
				Requeue: requeue(res),
				Calls:   e.kms.Calls(),
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\n(-want +got):\n%s", tc.reason, diff)
			}
			if k.Status.ObservedGeneration != before.Generation {
				t.Errorf("%s\nobservedGeneration %d, want %d", tc.reason, k.Status.ObservedGeneration, before.Generation)
			}
			if c := meta.FindStatusCondition(k.Status.Conditions, kmsv1alpha1.ConditionSynced); c == nil || c.ObservedGeneration != before.Generation || c.Message == "" {
				t.Errorf("%s\nSynced %+v: want observedGeneration %d and a message", tc.reason, c, before.Generation)
			}
			if tc.created && k.Status.KeyID == "" {
				t.Errorf("%s\nthe failure lost status.keyID", tc.reason)
			}
			if n := e.kms.Count("CreateKey"); tc.created && n != 0 {
				t.Errorf("%s\n%d CreateKey calls for an existing key", tc.reason, n)
			}
		})
	}
}

func TestKeyMalformedPolicyGraceEnds(t *testing.T) {
	const reason = "A malformed policy is waited for (Propagating) during the grace, counted from the condition, then reported as invalid; success clears it."
	e := newKeyEnv(t, newKey(withPolicy(keyPolicy)))
	e.create()
	e.updateSpec(withPolicy(keyPolicyOther))
	malformed := kmsclient.NewError("PutKeyPolicy", kmsclient.MalformedPolicy, "MalformedPolicyDocumentException", "invalid principal")
	e.kms.Fail("PutKeyPolicy", malformed, 2)

	_, err := e.reconcile()
	var pe *propagatingError
	if !errors.As(err, &pe) {
		t.Fatalf("%s\nfirst failure: %v, want a wait for IAM", reason, err)
	}
	synced := meta.FindStatusCondition(e.get().Status.Conditions, kmsv1alpha1.ConditionSynced)
	if synced == nil || synced.Reason != kmsv1alpha1.ReasonPropagating || synced.ObservedGeneration != 2 {
		t.Fatalf("%s\nSynced %+v, want Propagating for generation 2", reason, synced)
	}
	e.setWaitingSince(2, synced.LastTransitionTime.Add(-principalGrace))
	res, err := e.reconcile()
	if err != nil || requeue(res) != "resync" {
		t.Fatalf("%s\nafter the grace: %v, requeue %s; want nil, resync", reason, err, requeue(res))
	}
	if got := condition(e.get().Status.Conditions, kmsv1alpha1.ConditionSynced); got != "False/InvalidSpec" {
		t.Errorf("%s\nafter the grace: Synced %s", reason, got)
	}
	e.mustReconcile()
	if got := condition(e.get().Status.Conditions, kmsv1alpha1.ConditionSynced); got != "True/ReconcileSuccess" {
		t.Errorf("%s\nafter success: Synced %s", reason, got)
	}
}
