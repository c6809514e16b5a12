package controllers

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
	"github.com/kmsoperator/kms-operator/internal/policy"
)

const (
	keyPolicy = `{"Version":"2012-10-17","Statement":[{"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`
	// keyPolicyReformatted means keyPolicy: other whitespace and key order,
	// the statement as an object, one-element arrays instead of strings.
	keyPolicyReformatted = "{\n  \"Statement\": {\n    \"Resource\": [\"*\"],\n    \"Action\": [\"kms:*\"],\n" +
		"    \"Principal\": {\"AWS\": [\"arn:aws:iam::111122223333:root\"]},\n    \"Effect\": \"Allow\",\n    \"Sid\": \"Root\"\n  },\n" +
		"  \"Version\": \"2012-10-17\"\n}"
	// keyPolicyOther means something else: an extra statement.
	keyPolicyOther = `{"Version":"2012-10-17","Statement":[{"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},` +
		`{"Sid":"App","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/app"},"Action":["kms:Decrypt","kms:Encrypt"],"Resource":"*"}]}`
)

// keyReads are the reads of a steady-state reconcile of a symmetric key with
// a policy in its spec.
var keyReads = []string{"DescribeKey", "ListResourceTags", "GetKeyPolicy", "GetKeyRotationStatus"}

func plus(calls []string, more ...string) []string {
	return append(append([]string{}, calls...), more...)
}

func TestKeyCreate(t *testing.T) {
	type rotation struct {
		Enabled          bool
		PeriodInDays     int32
		NextRotationDate bool // set, and about PeriodInDays from now
		LastOnDemand     string
	}
	type want struct {
		Calls    []string
		KeyState string // in status and in KMS
		Rotation rotation
		Ready    string
		Synced   string
		Requeue  string
		Events   []string
	}
	full := []func(*kmsv1alpha1.Key){
		withDescription("payments"), withPolicy(keyPolicy), withTags(map[string]string{"team": "a", "env": "dev"}), withRotation(180),
	}
	cases := map[string]struct {
		reason string
		key    *kmsv1alpha1.Key
		want   want
	}{
		"Full": {
			reason: "One GetResources looks for a key of an earlier incarnation (none); CreateKey takes description, policy and tags; only rotation needs a call of its own, made a moment later (createdRecheck) when KMS shows the new key.",
			key:    newKey(full...),
			want: want{
				Calls: []string{"GetResources", "CreateKey", "EnableKeyRotation"}, KeyState: kmsclient.StateEnabled,
				Rotation: rotation{Enabled: true, PeriodInDays: 180, NextRotationDate: true},
				Ready:    "True/Available", Synced: "True/ReconcileSuccess", Requeue: "resync",
				Events: []string{"Normal Created"},
			},
		},
		"Disabled": {
			reason: "A key declared disabled is disabled right after its creation, with no reads.",
			key:    newKey(withDescription("payments"), withEnabled(false)),
			want: want{
				Calls: []string{"GetResources", "CreateKey", "DisableKey"}, KeyState: kmsclient.StateDisabled,
				Ready: "True/Available", Synced: "True/ReconcileSuccess", Requeue: "resync",
				Events: []string{"Normal Created"},
			},
		},
		"OnDemandAtCreation": {
			reason: "A new key's material is fresh: an on-demand request at creation is recorded, not acted on.",
			key:    newKey(append(full, withOnDemand("2024-01-01"))...),
			want: want{
				Calls: []string{"GetResources", "CreateKey", "EnableKeyRotation"}, KeyState: kmsclient.StateEnabled,
				Rotation: rotation{Enabled: true, PeriodInDays: 180, NextRotationDate: true, LastOnDemand: "2024-01-01"},
				Ready:    "True/Available", Synced: "True/ReconcileSuccess", Requeue: "resync",
				Events: []string{"Normal Created"},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := newKeyEnv(t, tc.key)
			start := time.Now()
			res, err := e.reconcile()
			if err != nil {
				t.Fatalf("%s\nreconcile: %v", tc.reason, err)
			}
			res = e.finishCreation(res)
			calls := e.kms.Calls()
			k := e.get()
			keys := e.kms.Keys()
			if len(keys) != 1 {
				t.Fatalf("%s\nwant 1 KMS key, got %d", tc.reason, len(keys))
			}
			kk := keys[0]

			got := want{
				Calls: calls, KeyState: k.Status.KeyState,
				Ready:  condition(k.Status.Conditions, kmsv1alpha1.ConditionReady),
				Synced: condition(k.Status.Conditions, kmsv1alpha1.ConditionSynced), Requeue: requeue(res),
				Events: drainEvents(e.rec),
			}
			if rs := k.Status.Rotation; rs != nil {
				got.Rotation = rotation{Enabled: rs.Enabled, PeriodInDays: rs.PeriodInDays, LastOnDemand: rs.LastOnDemandRequest}
				if rs.NextRotationDate != nil {
					d := rs.NextRotationDate.Sub(start.AddDate(0, 0, int(rs.PeriodInDays)))
					got.Rotation.NextRotationDate = d > -2*time.Second && d < time.Minute
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\n(-want +got):\n%s", tc.reason, diff)
			}

			// What every creation must leave behind.
			if k.Status.KeyID != kk.ID || k.Status.ARN != kk.ARN {
				t.Errorf("%s\nstatus names key %s (%s), KMS has %s (%s)", tc.reason, k.Status.KeyID, k.Status.ARN, kk.ID, kk.ARN)
			}
			if kk.State != tc.want.KeyState || kk.Description != tc.key.Spec.Description {
				t.Errorf("%s\nKMS key is %s %q, want %s %q", tc.reason, kk.State, kk.Description, tc.want.KeyState, tc.key.Spec.Description)
			}
			if k.Status.ObservedGeneration != 1 {
				t.Errorf("%s\nstatus.observedGeneration = %d, want 1", tc.reason, k.Status.ObservedGeneration)
			}
			for _, c := range k.Status.Conditions {
				if c.ObservedGeneration != 1 {
					t.Errorf("%s\ncondition %s has observedGeneration %d, want 1", tc.reason, c.Type, c.ObservedGeneration)
				}
			}
			if k.Status.CreationDate == nil {
				t.Errorf("%s\nstatus.creationDate not set", tc.reason)
			}
			if _, ok := k.Annotations[kmsv1alpha1.AnnotationCreateStarted]; !ok {
				t.Errorf("%s\nannotation %s not set", tc.reason, kmsv1alpha1.AnnotationCreateStarted)
			}
			if !controllerutil.ContainsFinalizer(k, kmsv1alpha1.Finalizer) {
				t.Errorf("%s\nfinalizer not set: %v", tc.reason, k.Finalizers)
			}
			if diff := cmp.Diff(ownership(keyTestUID, tc.key.Spec.Tags), e.kmsTags(kk.ID)); diff != "" {
				t.Errorf("%s\nKMS tags (-want +got):\n%s", tc.reason, diff)
			}
			if tc.key.Spec.Policy != "" {
				p, err := e.kms.GetKeyPolicy(context.Background(), kk.ID)
				if eq, _ := policy.Equal(tc.key.Spec.Policy, p); err != nil || !eq {
					t.Errorf("%s\nKMS policy %s (%v), want %s", tc.reason, p, err, tc.key.Spec.Policy)
				}
			}
		})
	}
}

func TestKeySteadyState(t *testing.T) {
	cases := map[string]struct {
		reason string
		key    *kmsv1alpha1.Key
		want   []string
	}{
		"PolicyAndRotation": {
			reason: "A converged key costs one read per declared aspect and no write.",
			key:    newKey(withDescription("d"), withPolicy(keyPolicy), withTags(map[string]string{"team": "a"}), withRotation(180), withOnDemand("r1")),
			want:   keyReads,
		},
		"NoPolicy": {
			reason: "An omitted policy is KMS's business: it is not read.",
			key:    newKey(withDescription("d"), withRotation(365)),
			want:   []string{"DescribeKey", "ListResourceTags", "GetKeyRotationStatus"},
		},
		"Disabled": {
			reason: "A disabled key is not enabled or disabled again.",
			key:    newKey(withPolicy(keyPolicy), withEnabled(false)),
			want:   keyReads,
		},
		"RSA": {
			reason: "An asymmetric key cannot rotate: its rotation is not read.",
			key: newKey(withPolicy(keyPolicy), func(k *kmsv1alpha1.Key) {
				k.Spec.KeySpec, k.Spec.KeyUsage = "RSA_2048", "SIGN_VERIFY"
			}),
			want: []string{"DescribeKey", "ListResourceTags", "GetKeyPolicy"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := newKeyEnv(t, tc.key)
			e.create()
			res := e.mustReconcile()
			if diff := cmp.Diff(tc.want, e.kms.Calls()); diff != "" {
				t.Errorf("%s\ncalls (-want +got):\n%s", tc.reason, diff)
			}
			k := e.get()
			if got := condition(k.Status.Conditions, kmsv1alpha1.ConditionReady); got != "True/Available" || requeue(res) != "resync" {
				t.Errorf("%s\nReady %s, requeue %s; want True/Available, resync", tc.reason, got, requeue(res))
			}
			if ev := drainEvents(e.rec); len(ev) != 0 {
				t.Errorf("%s\nunexpected events %v", tc.reason, ev)
			}

			// Once the status says what KMS says, a resync writes nothing
			// to the API server either.
			rv := k.ResourceVersion
			e.kms.ResetCalls()
			e.mustReconcile()
			if diff := cmp.Diff(tc.want, e.kms.Calls()); diff != "" {
				t.Errorf("%s\ncalls of the third reconcile (-want +got):\n%s", tc.reason, diff)
			}
			if k := e.get(); k.ResourceVersion != rv {
				t.Errorf("%s\nthe third reconcile wrote the object (resourceVersion %s -> %s): %+v", tc.reason, rv, k.ResourceVersion, k.Status)
			}
		})
	}
}

// TestKeyFinalizerFirst checks the finalizer is on the object before any KMS
// key exists, so no key can outlive its object unnoticed.
func TestKeyFinalizerFirst(t *testing.T) {
	e := newKeyEnv(t, newKey())
	e.kms.Fail("CreateKey", kmsclient.NewError("CreateKey", kmsclient.Transient, "", "boom"), 1)
	if _, err := e.reconcile(); err == nil {
		t.Fatal("want the CreateKey failure returned")
	}
	k := e.get()
	if !controllerutil.ContainsFinalizer(k, kmsv1alpha1.Finalizer) {
		t.Errorf("finalizer missing after a failed create: %v", k.Finalizers)
	}
	if _, ok := k.Annotations[kmsv1alpha1.AnnotationCreateStarted]; !ok {
		t.Errorf("create-started annotation missing after a CreateKey attempt")
	}
	// The failure may have hidden a new key KMS does not list yet: the retry
	// looks for it and waits; once KMS had its consistency window to list
	// it, the next one creates exactly one key.
	e.kms.ResetCalls()
	if _, err := e.reconcile(); !isPropagating(err) {
		t.Errorf("retry within the consistency window: %v, want a wait", err)
	}
	e.ageCreateAttempt(DefaultConsistencyWindow)
	e.mustReconcile()
	if diff := cmp.Diff([]string{"GetResources", "GetResources", "CreateKey"}, e.kms.Calls()); diff != "" {
		t.Errorf("calls of the retries (-want +got):\n%s", diff)
	}
	if n := len(e.kms.Keys()); n != 1 {
		t.Errorf("%d KMS keys, want 1", n)
	}
}
