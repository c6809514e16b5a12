package controllers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
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
			reason: "CreateKey takes description, policy and tags; only rotation needs a call of its own.",
			key:    newKey(full...),
			want: want{
				Calls: []string{"CreateKey", "EnableKeyRotation"}, KeyState: kmsclient.StateEnabled,
				Rotation: rotation{Enabled: true, PeriodInDays: 180, NextRotationDate: true},
				Ready:    "True/Available", Synced: "True/ReconcileSuccess", Requeue: "resync",
				Events: []string{"Normal Created", "Normal Updated"},
			},
		},
		"Disabled": {
			reason: "A key declared disabled is disabled right after its creation, with no reads.",
			key:    newKey(withDescription("payments"), withEnabled(false)),
			want: want{
				Calls: []string{"CreateKey", "DisableKey"}, KeyState: kmsclient.StateDisabled,
				Ready: "True/Available", Synced: "True/ReconcileSuccess", Requeue: "resync",
				Events: []string{"Normal Created", "Normal Updated"},
			},
		},
		"OnDemandAtCreation": {
			reason: "A new key's material is fresh: an on-demand request at creation is recorded, not acted on.",
			key:    newKey(append(full, withOnDemand("2024-01-01"))...),
			want: want{
				Calls: []string{"CreateKey", "EnableKeyRotation"}, KeyState: kmsclient.StateEnabled,
				Rotation: rotation{Enabled: true, PeriodInDays: 180, NextRotationDate: true, LastOnDemand: "2024-01-01"},
				Ready:    "True/Available", Synced: "True/ReconcileSuccess", Requeue: "resync",
				Events: []string{"Normal Created", "Normal Updated"},
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

func TestKeyUpdate(t *testing.T) {
	baseTags := map[string]string{"team": "a", "env": "dev"}
	cases := map[string]struct {
		reason string
		base   []func(*kmsv1alpha1.Key) // besides description, policy, tags
		kms    func(ctx context.Context, f *kmsclient.Fake, id string)
		change func(*kmsv1alpha1.Key)
		want   []string // the writes after the reads
		// tags are the key's tags afterwards, ownership ones aside (nil: not checked).
		tags         map[string]string
		lastOnDemand string
	}{
		"Description": {
			reason: "A new description is one UpdateKeyDescription.",
			change: withDescription("new"),
			want:   []string{"UpdateKeyDescription"},
		},
		"Disable": {
			reason: "enabled: false is one DisableKey.",
			change: withEnabled(false),
			want:   []string{"DisableKey"},
		},
		"Enable": {
			reason: "enabled: true on a disabled key is one EnableKey.",
			base:   []func(*kmsv1alpha1.Key){withEnabled(false)},
			change: withEnabled(true),
			want:   []string{"EnableKey"},
		},
		"RotationOn": {
			reason: "Turning rotation on is one EnableKeyRotation.",
			change: withRotation(365),
			want:   []string{"EnableKeyRotation"},
		},
		"RotationPeriod": {
			reason: "A new rotation period is one EnableKeyRotation.",
			base:   []func(*kmsv1alpha1.Key){withRotation(180)},
			change: withRotation(400),
			want:   []string{"EnableKeyRotation"},
		},
		"RotationOff": {
			reason: "Turning rotation off is one DisableKeyRotation.",
			base:   []func(*kmsv1alpha1.Key){withRotation(180)},
			change: withRotation(0),
			want:   []string{"DisableKeyRotation"},
		},
		"DisableAndRotationChange": {
			reason: "Rotation is changed before the key is disabled: KMS refuses rotation changes on a disabled key.",
			base:   []func(*kmsv1alpha1.Key){withRotation(180)},
			change: func(k *kmsv1alpha1.Key) { withRotation(365)(k); withEnabled(false)(k) },
			want:   []string{"EnableKeyRotation", "DisableKey"},
		},
		"OnDemandNew": {
			reason:       "A new onDemandRequest value is one RotateKeyOnDemand, remembered in status.",
			base:         []func(*kmsv1alpha1.Key){withRotation(180)},
			change:       withOnDemand("2024-06-01"),
			want:         []string{"RotateKeyOnDemand"},
			lastOnDemand: "2024-06-01",
		},
		"OnDemandSameValue": {
			reason:       "An onDemandRequest already acted on is not acted on again when something else changes.",
			base:         []func(*kmsv1alpha1.Key){withRotation(180), withOnDemand("2024-06-01")},
			change:       withDescription("new"),
			want:         []string{"UpdateKeyDescription"},
			lastOnDemand: "2024-06-01",
		},
		"PolicyChanged": {
			reason: "A policy that means something else is one PutKeyPolicy.",
			change: withPolicy(keyPolicyOther),
			want:   []string{"PutKeyPolicy"},
		},
		"PolicyReformatted": {
			reason: "A policy spelled differently but meaning the same is not written.",
			change: withPolicy(keyPolicyReformatted),
			want:   nil,
		},
		"TagAdded": {
			reason: "A new tag is one TagResource.",
			change: withTags(map[string]string{"team": "a", "env": "dev", "cost": "42"}),
			want:   []string{"TagResource"},
			tags:   map[string]string{"team": "a", "env": "dev", "cost": "42"},
		},
		"TagValueChanged": {
			reason: "A changed tag value is one TagResource.",
			change: withTags(map[string]string{"team": "a", "env": "prod"}),
			want:   []string{"TagResource"},
			tags:   map[string]string{"team": "a", "env": "prod"},
		},
		"TagRemoved": {
			reason: "A tag dropped from the spec is one UntagResource of that tag; reserved operator tags stay.",
			kms: func(ctx context.Context, f *kmsclient.Fake, id string) {
				if err := f.TagKey(ctx, id, map[string]string{kmsv1alpha1.TagPrefix + "other-claim": "x"}); err != nil {
					panic(err)
				}
			},
			change: withTags(map[string]string{"team": "a"}),
			want:   []string{"UntagResource"},
			tags:   map[string]string{"team": "a", kmsv1alpha1.TagPrefix + "other-claim": "x"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			e := newKeyEnv(t, newKey(append([]func(*kmsv1alpha1.Key){
				withDescription("old"), withPolicy(keyPolicy), withTags(baseTags)}, tc.base...)...))
			id := e.create()
			if tc.kms != nil {
				tc.kms(ctx, e.kms, id)
			}
			e.mustReconcile() // converged before the change
			e.kms.ResetCalls()

			e.updateSpec(tc.change)
			res := e.mustReconcile()
			if diff := cmp.Diff(plus(keyReads, tc.want...), e.kms.Calls()); diff != "" {
				t.Errorf("%s\ncalls (-want +got):\n%s", tc.reason, diff)
			}
			k := e.get()
			got := []string{condition(k.Status.Conditions, kmsv1alpha1.ConditionReady), condition(k.Status.Conditions, kmsv1alpha1.ConditionSynced), requeue(res)}
			if diff := cmp.Diff([]string{"True/Available", "True/ReconcileSuccess", "resync"}, got); diff != "" {
				t.Errorf("%s\nReady, Synced, requeue (-want +got):\n%s", tc.reason, diff)
			}
			if k.Status.ObservedGeneration != 2 {
				t.Errorf("%s\nobservedGeneration %d, want 2", tc.reason, k.Status.ObservedGeneration)
			}
			wantEvents := []string(nil)
			if len(tc.want) > 0 {
				wantEvents = []string{"Normal Updated"}
			}
			if diff := cmp.Diff(wantEvents, drainEvents(e.rec)); diff != "" {
				t.Errorf("%s\nevents (-want +got):\n%s", tc.reason, diff)
			}
			if tc.lastOnDemand != "" && (k.Status.Rotation == nil || k.Status.Rotation.LastOnDemandRequest != tc.lastOnDemand) {
				t.Errorf("%s\nstatus.rotation %+v, want lastOnDemandRequest %s", tc.reason, k.Status.Rotation, tc.lastOnDemand)
			}

			// The change took: the next reconcile (same spec) only reads.
			e.kms.ResetCalls()
			e.mustReconcile()
			if diff := cmp.Diff(keyReads, e.kms.Calls()); diff != "" {
				t.Errorf("%s\ncalls of the next reconcile (-want +got):\n%s", tc.reason, diff)
			}
			if tc.tags != nil {
				if diff := cmp.Diff(ownership(keyTestUID, tc.tags), e.kmsTags(id)); diff != "" {
					t.Errorf("%s\nKMS tags (-want +got):\n%s", tc.reason, diff)
				}
			}
		})
	}
}

func TestKeyDrift(t *testing.T) {
	cases := map[string]struct {
		reason string
		drift  func(ctx context.Context, f *kmsclient.Fake, id string) error
		want   []string // all calls
		// requeue and Ready of the correcting reconcile.
		requeue string
		ready   string
	}{
		"Disabled": {
			reason: "A key disabled behind the operator's back is enabled again.",
			drift:  func(ctx context.Context, f *kmsclient.Fake, id string) error { return f.DisableKey(ctx, id) },
			want:   plus(keyReads, "EnableKey"), requeue: "resync", ready: "True/Available",
		},
		"Description": {
			reason: "A changed description is put back.",
			drift: func(ctx context.Context, f *kmsclient.Fake, id string) error {
				return f.UpdateDescription(ctx, id, "hacked")
			},
			want: plus(keyReads, "UpdateKeyDescription"), requeue: "resync", ready: "True/Available",
		},
		"Policy": {
			reason: "Another policy is replaced by the declared one.",
			drift: func(ctx context.Context, f *kmsclient.Fake, id string) error {
				return f.PutKeyPolicy(ctx, id, keyPolicyOther, false)
			},
			want: plus(keyReads, "PutKeyPolicy"), requeue: "resync", ready: "True/Available",
		},
		"ForeignTag": {
			reason: "A tag the spec does not declare is removed.",
			drift: func(ctx context.Context, f *kmsclient.Fake, id string) error {
				return f.TagKey(ctx, id, map[string]string{"intruder": "yes"})
			},
			want: plus(keyReads, "UntagResource"), requeue: "resync", ready: "True/Available",
		},
		"OwnershipTagRemoved": {
			reason: "An ownership tag removed by hand is put back.",
			drift: func(ctx context.Context, f *kmsclient.Fake, id string) error {
				return f.UntagKey(ctx, id, []string{kmsv1alpha1.TagOwnerUID})
			},
			want: plus(keyReads, "TagResource"), requeue: "resync", ready: "True/Available",
		},
		"RotationDisabled": {
			reason: "Rotation turned off by hand is turned on again.",
			drift:  func(ctx context.Context, f *kmsclient.Fake, id string) error { return f.DisableRotation(ctx, id) },
			want:   plus(keyReads, "EnableKeyRotation"), requeue: "resync", ready: "True/Available",
		},
		"DeletionScheduled": {
			reason: "A deletion scheduled by hand is cancelled and the key enabled again (KMS leaves it Disabled); the rest is read a second later.",
			drift: func(ctx context.Context, f *kmsclient.Fake, id string) error {
				_, err := f.ScheduleDeletion(ctx, id, 7)
				return err
			},
			want:    []string{"DescribeKey", "ListResourceTags", "CancelKeyDeletion", "EnableKey"},
			requeue: "1s", ready: "False/Updating",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			e := newKeyEnv(t, newKey(withDescription("payments"), withPolicy(keyPolicy),
				withTags(map[string]string{"team": "a"}), withRotation(180)))
			id := e.create()
			if err := tc.drift(ctx, e.kms, id); err != nil {
				t.Fatal(err)
			}
			e.kms.ResetCalls()

			res := e.mustReconcile()
			if diff := cmp.Diff(tc.want, e.kms.Calls()); diff != "" {
				t.Errorf("%s\ncalls (-want +got):\n%s", tc.reason, diff)
			}
			k := e.get()
			got := []string{requeue(res), condition(k.Status.Conditions, kmsv1alpha1.ConditionReady), condition(k.Status.Conditions, kmsv1alpha1.ConditionSynced)}
			if diff := cmp.Diff([]string{tc.requeue, tc.ready, "True/ReconcileSuccess"}, got); diff != "" {
				t.Errorf("%s\nrequeue, Ready, Synced (-want +got):\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff([]string{"Warning DriftCorrected"}, drainEvents(e.rec)); diff != "" {
				t.Errorf("%s\nevents (-want +got):\n%s", tc.reason, diff)
			}

			// Corrected for good: the following reconcile only reads.
			e.kms.ResetCalls()
			e.mustReconcile()
			if diff := cmp.Diff(keyReads, e.kms.Calls()); diff != "" {
				t.Errorf("%s\ncalls after the correction (-want +got):\n%s", tc.reason, diff)
			}
			k = e.get()
			if got := condition(k.Status.Conditions, kmsv1alpha1.ConditionReady); got != "True/Available" || k.Status.KeyState != kmsclient.StateEnabled {
				t.Errorf("%s\nafter the correction: Ready %s, keyState %s", tc.reason, got, k.Status.KeyState)
			}
			if kk := e.kmsKey(id); kk.State != kmsclient.StateEnabled || kk.Description != "payments" {
				t.Errorf("%s\nKMS key is %s %q after the correction", tc.reason, kk.State, kk.Description)
			}
		})
	}
}

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
			p := kmsclient.NewFakeProvider()
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

func TestKeyAdoption(t *testing.T) {
	otherUID := types.UID("uid-of-a-deleted-object")
	cases := map[string]struct {
		reason    string
		allow     bool
		tags      map[string]string // on the existing key
		scheduled bool              // the existing key is pending deletion
		calls     []string
		synced    string
		requeue   string
		keyID     bool              // status.keyID names the key
		next      []string          // calls of the following reconcile
		wantTags  map[string]string // the key's tags afterwards
		wantState string            // the key's state afterwards
	}{
		"Unowned": {
			reason: "An unowned key is adopted and tagged as this object's.",
			allow:  true, tags: map[string]string{"team": "a"},
			calls:  []string{"DescribeKey", "ListResourceTags", "GetKeyRotationStatus", "TagResource"},
			synced: "True/ReconcileSuccess", requeue: "resync", keyID: true,
			wantTags: ownership(keyTestUID, map[string]string{"team": "a"}), wantState: kmsclient.StateEnabled,
			next: []string{"DescribeKey", "ListResourceTags", "GetKeyRotationStatus"},
		},
		"FlagOff": {
			reason: "Without --allow-adoption nothing is asked of KMS and nothing is retried hot.",
			tags:   map[string]string{"team": "a"},
			synced: "False/AdoptionRefused", requeue: "resync",
			wantTags: map[string]string{"team": "a"}, wantState: kmsclient.StateEnabled,
		},
		"OtherNamespace": {
			reason: "A key owned by a Key of another namespace is refused.",
			allow:  true, tags: ownedBy("team-b", keyTestName, keyTestCluster),
			calls:  []string{"DescribeKey", "ListResourceTags"},
			synced: "False/AdoptionRefused", requeue: "resync",
			wantTags: ownedBy("team-b", keyTestName, keyTestCluster), wantState: kmsclient.StateEnabled,
		},
		"OtherName": {
			reason: "A key owned by another Key of the namespace is refused.",
			allow:  true, tags: ownedBy(keyTestNS, "other", keyTestCluster),
			calls:  []string{"DescribeKey", "ListResourceTags"},
			synced: "False/AdoptionRefused", requeue: "resync",
			wantTags: ownedBy(keyTestNS, "other", keyTestCluster), wantState: kmsclient.StateEnabled,
		},
		"OtherCluster": {
			reason: "A key owned by the same namespace/name of another cluster is refused.",
			allow:  true, tags: ownedBy(keyTestNS, keyTestName, "elsewhere"),
			calls:  []string{"DescribeKey", "ListResourceTags"},
			synced: "False/AdoptionRefused", requeue: "resync",
			wantTags: ownedBy(keyTestNS, keyTestName, "elsewhere"), wantState: kmsclient.StateEnabled,
		},
		"SameNameNewUID": {
			reason: "A Key re-created with the same namespace/name gets its key back; the owner UID tag is updated.",
			allow:  true, tags: ownership(otherUID, nil),
			calls:  []string{"DescribeKey", "ListResourceTags", "GetKeyRotationStatus", "TagResource"},
			synced: "True/ReconcileSuccess", requeue: "resync", keyID: true,
			wantTags: ownership(keyTestUID, nil), wantState: kmsclient.StateEnabled,
			next: []string{"DescribeKey", "ListResourceTags", "GetKeyRotationStatus"},
		},
		"PendingDeletion": {
			reason: "Adopting a key pending deletion cancels the deletion and enables it; the rest follows a second later.",
			allow:  true, scheduled: true,
			calls:  []string{"DescribeKey", "ListResourceTags", "CancelKeyDeletion", "EnableKey"},
			synced: "True/ReconcileSuccess", requeue: "1s", keyID: true,
			wantTags: map[string]string{}, wantState: kmsclient.StateEnabled,
			next: []string{"DescribeKey", "ListResourceTags", "GetKeyRotationStatus", "TagResource"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			p := kmsclient.NewFakeProvider()
			f := p.Fake("")
			kk, err := f.CreateKey(ctx, kmsclient.CreateKeyInput{Tags: tc.tags})
			if err != nil {
				t.Fatal(err)
			}
			if tc.scheduled {
				if _, err := f.ScheduleDeletion(ctx, kk.ID, 30); err != nil {
					t.Fatal(err)
				}
			}
			e := newKeyEnv(t, newKey(withTags(without(tc.tags, kmsv1alpha1.TagPrefix)), withKeyID(kk.ARN)))
			e.useKMS(p, tc.allow)
			f.ResetCalls()

			res, err := e.reconcile()
			if err != nil {
				t.Errorf("%s\nreconcile returned %v, want nil", tc.reason, err)
			}
			k := e.get()
			got := []string{condition(k.Status.Conditions, kmsv1alpha1.ConditionSynced), requeue(res)}
			if diff := cmp.Diff([]string{tc.synced, tc.requeue}, got); diff != "" {
				t.Errorf("%s\nSynced, requeue (-want +got):\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.calls, f.Calls()); diff != "" {
				t.Errorf("%s\ncalls (-want +got):\n%s", tc.reason, diff)
			}
			if (k.Status.KeyID == kk.ID) != tc.keyID || (!tc.keyID && k.Status.KeyID != "") {
				t.Errorf("%s\nstatus.keyID = %q (key %s), want it set: %v", tc.reason, k.Status.KeyID, kk.ID, tc.keyID)
			}
			if got := e.kmsKey(kk.ID).State; got != tc.wantState {
				t.Errorf("%s\nKMS key state %s, want %s", tc.reason, got, tc.wantState)
			}
			if diff := cmp.Diff(tc.wantTags, e.kmsTags(kk.ID), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\nKMS tags (-want +got):\n%s", tc.reason, diff)
			}
			if tc.next == nil {
				return
			}
			// The adopted key is the object's own from now on (spec.keyID
			// is its ARN, status.keyID its id).
			f.ResetCalls()
			e.mustReconcile()
			if diff := cmp.Diff(tc.next, f.Calls()); diff != "" {
				t.Errorf("%s\ncalls of the next reconcile (-want +got):\n%s", tc.reason, diff)
			}
			if got := condition(e.get().Status.Conditions, kmsv1alpha1.ConditionReady); got != "True/Available" {
				t.Errorf("%s\nnext reconcile: Ready %s", tc.reason, got)
			}
		})
	}
}

// without returns tags minus the keys starting with prefix.
func without(tags map[string]string, prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range tags {
		if !strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}

func TestKeyCrashSafeCreate(t *testing.T) {
	lost := kmsclient.NewError("CreateKey", kmsclient.Transient, "", "read tcp: connection reset by peer")
	cases := map[string]struct {
		reason string
		// crash creates the key and loses its id: on return the object must
		// be as the next reconcile would read it.
		crash func(t *testing.T, e *keyEnv)
		// restart: the next reconcile is another process's.
		restart bool
		calls   []string
		events  []string
	}{
		"CreateKeyResponseLost": {
			reason: "A CreateKey whose response was lost is found by its owner tag after a restart.",
			crash: func(t *testing.T, e *keyEnv) {
				e.kms.LoseResponse("CreateKey", lost, 1)
				if _, err := e.reconcile(); err == nil {
					t.Fatal("reconcile with a lost CreateKey response returned nil")
				}
				k := e.get()
				if _, ok := k.Annotations[kmsv1alpha1.AnnotationCreateStarted]; !ok || k.Status.KeyID != "" {
					t.Fatalf("after the lost response: annotations %v, keyID %q", k.Annotations, k.Status.KeyID)
				}
				if got := condition(k.Status.Conditions, kmsv1alpha1.ConditionSynced); got != "False/ReconcileError" {
					t.Errorf("after the lost response: Synced %s, want False/ReconcileError", got)
				}
			},
			restart: true,
			// The lost attempt never got to enable rotation.
			calls:  []string{"ListKeys", "ListResourceTags", "DescribeKey", "ListResourceTags", "GetKeyRotationStatus", "EnableKeyRotation"},
			events: []string{"Normal Recovered", "Normal Updated"},
		},
		"StatusLost": {
			reason: "An object whose status was lost (restored from a backup) keeps its annotation, which leads to its key.",
			crash: func(t *testing.T, e *keyEnv) {
				e.create()
				e.setStatus(kmsv1alpha1.KeyStatus{})
			},
			restart: true,
			calls:   []string{"ListKeys", "ListResourceTags", "DescribeKey", "ListResourceTags", "GetKeyRotationStatus"},
			events:  []string{"Normal Recovered"},
		},
		"StaleCache": {
			reason: "A reconcile reading a cached object from before the key's creation uses the id this process remembers.",
			crash: func(t *testing.T, e *keyEnv) {
				e.create()
				k := e.get()
				delete(k.Annotations, kmsv1alpha1.AnnotationCreateStarted)
				if err := e.c.Update(context.Background(), k); err != nil {
					t.Fatal(err)
				}
				e.setStatus(kmsv1alpha1.KeyStatus{})
			},
			calls: []string{"DescribeKey", "ListResourceTags", "GetKeyRotationStatus"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := newKeyEnv(t, newKey(withDescription("d"), withRotation(365)))
			tc.crash(t, e)
			if tc.restart {
				e.restart()
			}
			e.kms.ResetCalls()
			drainEvents(e.rec)

			res := e.mustReconcile()
			if diff := cmp.Diff(tc.calls, e.kms.Calls()); diff != "" {
				t.Errorf("%s\ncalls (-want +got):\n%s", tc.reason, diff)
			}
			keys := e.kms.Keys()
			k := e.get()
			if len(keys) != 1 || k.Status.KeyID != keys[0].ID {
				t.Fatalf("%s\nstatus.keyID %q; KMS keys %+v; want exactly one, recorded", tc.reason, k.Status.KeyID, keys)
			}
			got := []string{condition(k.Status.Conditions, kmsv1alpha1.ConditionReady), requeue(res)}
			if diff := cmp.Diff([]string{"True/Available", "resync"}, got); diff != "" {
				t.Errorf("%s\nReady, requeue (-want +got):\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.events, drainEvents(e.rec)); diff != "" {
				t.Errorf("%s\nevents (-want +got):\n%s", tc.reason, diff)
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
			reason: "Throttling of a read is retried with backoff.", created: true,
			setup: func(e *keyEnv) { e.kms.Fail("DescribeKey", throttled, 1) },
			want:  want{Err: true, Synced: "False/Throttled", Ready: "False/Throttled", Requeue: "none", Calls: []string{"DescribeKey"}},
		},
		"TransientWrite": {
			reason: "A transient fault is retried with backoff.", created: true, change: withDescription("new"),
			setup: func(e *keyEnv) { e.kms.Fail("UpdateKeyDescription", transient, 1) },
			want:  want{Err: true, Synced: "False/ReconcileError", Ready: "False/ReconcileError", Requeue: "none", Calls: plus(keyReads, "UpdateKeyDescription")},
		},
		"TransientCreate": {
			reason: "A transient CreateKey fault is retried with backoff.",
			setup:  func(e *keyEnv) { e.kms.Fail("CreateKey", transient, 1) },
			want:   want{Err: true, Synced: "False/ReconcileError", Ready: "False/ReconcileError", Requeue: "none", Calls: []string{"CreateKey"}},
		},
		"InvalidWrite": {
			reason: "Invalid input is terminal: reported, looked at again at the resync.", created: true, change: withRotation(400),
			setup: func(e *keyEnv) { e.kms.Fail("EnableKeyRotation", invalid, 1) },
			want:  want{Synced: "False/InvalidSpec", Ready: "False/InvalidSpec", Requeue: "resync", Calls: plus(keyReads, "EnableKeyRotation")},
		},
		"InvalidStateWrite": {
			reason: "A forbidding key state is terminal.", created: true, change: withDescription("new"),
			setup: func(e *keyEnv) { e.kms.Fail("UpdateKeyDescription", invalidState, 1) },
			want:  want{Synced: "False/InvalidKeyState", Ready: "False/InvalidKeyState", Requeue: "resync", Calls: plus(keyReads, "UpdateKeyDescription")},
		},
		"MalformedPolicyInGrace": {
			reason: "A malformed policy is retried while IAM may be propagating a new principal.", created: true, change: withPolicy(keyPolicyOther),
			setup: func(e *keyEnv) { e.kms.Fail("PutKeyPolicy", malformed, 1) },
			want:  want{Err: true, Synced: "False/ReconcileError", Ready: "False/ReconcileError", Requeue: "none", Calls: plus(keyReads, "PutKeyPolicy")},
		},
		"MalformedPolicyAfterGrace": {
			reason: "A policy still malformed after the grace is an invalid spec.", created: true, change: withPolicy(keyPolicyOther),
			setup: func(e *keyEnv) {
				e.kms.Fail("PutKeyPolicy", malformed, 1)
				e.r.malformedSince[keyTestUID] = generationTime{generation: 2, since: time.Now().Add(-3 * time.Minute)}
			},
			want: want{Synced: "False/InvalidSpec", Ready: "False/InvalidSpec", Requeue: "resync", Calls: plus(keyReads, "PutKeyPolicy")},
		},
		"MalformedPolicyOfOlderGeneration": {
			reason: "The grace starts again for a new generation of the spec.", created: true, change: withPolicy(keyPolicyOther),
			setup: func(e *keyEnv) {
				e.kms.Fail("PutKeyPolicy", malformed, 1)
				e.r.malformedSince[keyTestUID] = generationTime{generation: 1, since: time.Now().Add(-3 * time.Minute)}
			},
			want: want{Err: true, Synced: "False/ReconcileError", Ready: "False/ReconcileError", Requeue: "none", Calls: plus(keyReads, "PutKeyPolicy")},
		},
		"InvalidPolicyJSONAtCreate": {
			reason: "A policy that is not JSON is refused before any KMS call.",
			key:    newKey(withPolicy(`{"Version":"2012-10-17","Statement":[`)),
			want:   want{Synced: "False/InvalidSpec", Ready: "False/InvalidSpec", Requeue: "resync"},
		},
		"InvalidPolicyJSONOnUpdate": {
			reason: "A policy changed to something that is not JSON is refused without a PutKeyPolicy.", created: true,
			change: withPolicy(`{"Statement": "nope"`),
			want:   want{Synced: "False/InvalidSpec", Ready: "False/InvalidSpec", Requeue: "resync", Calls: keyReads},
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
			want:   want{Synced: "True/ReconcileSuccess", Ready: "False/InvalidKeyState", Requeue: "resync", Calls: []string{"CreateKey"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			key := tc.key
			if key == nil {
				key = newKey(withDescription("old"), withPolicy(keyPolicy), withRotation(180))
			}
			e := newKeyEnv(t, key)
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
	const reason = "A malformed policy is retried during the grace, then reported as invalid; success forgets it."
	e := newKeyEnv(t, newKey(withPolicy(keyPolicy)))
	e.create()
	e.updateSpec(withPolicy(keyPolicyOther))
	malformed := kmsclient.NewError("PutKeyPolicy", kmsclient.MalformedPolicy, "MalformedPolicyDocumentException", "invalid principal")
	e.kms.Fail("PutKeyPolicy", malformed, 2)

	_, err := e.reconcile()
	var re *retryableError
	if !errors.As(err, &re) {
		t.Fatalf("%s\nfirst failure: %v, want a retryable error", reason, err)
	}
	since, ok := e.r.malformedSince[keyTestUID]
	if !ok || since.generation != 2 {
		t.Fatalf("%s\nmalformedSince %+v, want generation 2", reason, since)
	}
	e.r.malformedSince[keyTestUID] = generationTime{generation: 2, since: since.since.Add(-malformedPolicyGrace)}
	res, err := e.reconcile()
	if err != nil || requeue(res) != "resync" {
		t.Fatalf("%s\nafter the grace: %v, requeue %s; want nil, resync", reason, err, requeue(res))
	}
	if got := condition(e.get().Status.Conditions, kmsv1alpha1.ConditionSynced); got != "False/InvalidSpec" {
		t.Errorf("%s\nafter the grace: Synced %s", reason, got)
	}
	e.mustReconcile()
	if _, ok := e.r.malformedSince[keyTestUID]; ok {
		t.Errorf("%s\nmalformedSince kept after the policy was accepted", reason)
	}
	if got := condition(e.get().Status.Conditions, kmsv1alpha1.ConditionSynced); got != "True/ReconcileSuccess" {
		t.Errorf("%s\nafter success: Synced %s", reason, got)
	}
}

func TestKeyDelete(t *testing.T) {
	lost := kmsclient.NewError("CreateKey", kmsclient.Transient, "", "context deadline exceeded")
	cases := map[string]struct {
		reason string
		key    *kmsv1alpha1.Key
		// setup makes the KMS side; it returns the key id to look at ("" none).
		setup     func(t *testing.T, e *keyEnv) string
		calls     []string
		wantState string // of the key afterwards
		// window: the key's deletion date is this many days away.
		window    int
		wantTags  map[string]string
		wantEvent []string
	}{
		"Delete": {
			reason: "Delete schedules the key's deletion with the declared window and releases the object.",
			key:    newKey(withTags(map[string]string{"team": "a"}), func(k *kmsv1alpha1.Key) { k.Spec.PendingWindowInDays = 7 }),
			setup:  func(t *testing.T, e *keyEnv) string { return e.create() },
			calls:  []string{"DescribeKey", "ScheduleKeyDeletion"}, wantState: kmsclient.StatePendingDeletion, window: 7,
			wantEvent: []string{"Normal DeletionScheduled"},
		},
		"AlreadyPendingDeletion": {
			reason: "A key already pending deletion is not scheduled again.",
			key:    newKey(),
			setup: func(t *testing.T, e *keyEnv) string {
				id := e.create()
				if _, err := e.kms.ScheduleDeletion(context.Background(), id, 30); err != nil {
					t.Fatal(err)
				}
				return id
			},
			calls: []string{"DescribeKey"}, wantState: kmsclient.StatePendingDeletion, window: 30,
		},
		"KeyGone": {
			reason: "A key that no longer exists needs nothing more.",
			key: newKey(func(k *kmsv1alpha1.Key) {
				k.Finalizers = []string{kmsv1alpha1.Finalizer}
				k.Status.KeyID = "0badc0de-0000-4000-8000-000000000000"
			}),
			setup: func(*testing.T, *keyEnv) string { return "" },
			calls: []string{"DescribeKey"},
		},
		"Retain": {
			reason: "Retain removes the four ownership tags and leaves the key enabled.",
			key: newKey(withTags(map[string]string{"team": "a"}), func(k *kmsv1alpha1.Key) {
				k.Spec.DeletionPolicy = kmsv1alpha1.DeletionPolicyRetain
			}),
			setup: func(t *testing.T, e *keyEnv) string { return e.create() },
			calls: []string{"UntagResource"}, wantState: kmsclient.StateEnabled,
			wantTags: map[string]string{"team": "a"}, wantEvent: []string{"Normal Retained"},
		},
		"RetainKeyGone": {
			reason: "Retain of a key that no longer exists needs nothing more.",
			key: newKey(func(k *kmsv1alpha1.Key) {
				k.Spec.DeletionPolicy = kmsv1alpha1.DeletionPolicyRetain
				k.Finalizers = []string{kmsv1alpha1.Finalizer}
				k.Status.KeyID = "0badc0de-0000-4000-8000-000000000000"
			}),
			setup: func(*testing.T, *keyEnv) string { return "" },
			calls: []string{"UntagResource"},
		},
		"RetainPendingDeletion": {
			reason: "Retain of a key already pending deletion (KMS refuses to untag it) is done, not wedged.",
			key: newKey(func(k *kmsv1alpha1.Key) {
				k.Spec.DeletionPolicy = kmsv1alpha1.DeletionPolicyRetain
			}),
			setup: func(t *testing.T, e *keyEnv) string {
				id := e.create()
				if _, err := e.kms.ScheduleDeletion(context.Background(), id, 30); err != nil {
					t.Fatal(err)
				}
				return id
			},
			calls: []string{"UntagResource", "DescribeKey"}, wantState: kmsclient.StatePendingDeletion, window: 30,
		},
		"AdoptionRefused": {
			reason: "An object whose adoption was refused never touches the key it named.",
			key: newKey(func(k *kmsv1alpha1.Key) {
				k.Finalizers = []string{kmsv1alpha1.Finalizer}
			}),
			setup: func(t *testing.T, e *keyEnv) string {
				id := e.unmanagedKey(kmsclient.CreateKeyInput{Tags: ownedBy("team-b", keyTestName, keyTestCluster)})
				k := e.get()
				k.Spec.KeyID = id
				if err := e.c.Update(context.Background(), k); err != nil {
					t.Fatal(err)
				}
				e.mustReconcile() // refused: adoption is off
				if got := condition(e.get().Status.Conditions, kmsv1alpha1.ConditionSynced); got != "False/AdoptionRefused" {
					t.Fatalf("Synced %s, want False/AdoptionRefused", got)
				}
				return id
			},
			wantState: kmsclient.StateEnabled, wantTags: ownedBy("team-b", keyTestName, keyTestCluster),
		},
		"Observe": {
			reason: "An observed key is never written, even when the object carries the finalizer.",
			key: newKey(withObserve(), func(k *kmsv1alpha1.Key) {
				k.Finalizers = []string{kmsv1alpha1.Finalizer}
			}),
			setup: func(t *testing.T, e *keyEnv) string {
				id := e.unmanagedKey(kmsclient.CreateKeyInput{})
				k := e.get()
				k.Spec.KeyID = id
				if err := e.c.Update(context.Background(), k); err != nil {
					t.Fatal(err)
				}
				e.setStatus(kmsv1alpha1.KeyStatus{KeyID: id})
				return id
			},
			wantState: kmsclient.StateEnabled, wantTags: map[string]string{},
		},
		"AfterLostCreate": {
			reason: "A key whose CreateKey response was lost is found by its owner tag and scheduled for deletion.",
			key:    newKey(),
			setup: func(t *testing.T, e *keyEnv) string {
				e.kms.LoseResponse("CreateKey", lost, 1)
				if _, err := e.reconcile(); err == nil {
					t.Fatal("reconcile with a lost CreateKey response returned nil")
				}
				e.restart()
				return e.kms.Keys()[0].ID
			},
			calls:     []string{"ListKeys", "ListResourceTags", "DescribeKey", "DescribeKey", "ScheduleKeyDeletion"},
			wantState: kmsclient.StatePendingDeletion, window: 30,
			wantEvent: []string{"Normal Recovered", "Normal DeletionScheduled"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			e := newKeyEnv(t, tc.key)
			id := tc.setup(t, e)
			if err := e.c.Delete(ctx, e.get()); err != nil {
				t.Fatal(err)
			}
			e.kms.ResetCalls()
			drainEvents(e.rec)

			res, err := e.reconcile()
			if err != nil || res.RequeueAfter != 0 {
				t.Errorf("%s\nreconcile: %v, requeue %s; want nil, none", tc.reason, err, requeue(res))
			}
			if diff := cmp.Diff(tc.calls, e.kms.Calls()); diff != "" {
				t.Errorf("%s\ncalls (-want +got):\n%s", tc.reason, diff)
			}
			if k := e.get(); k != nil {
				t.Errorf("%s\nobject still there with finalizers %v", tc.reason, k.Finalizers)
			}
			if diff := cmp.Diff(tc.wantEvent, drainEvents(e.rec)); diff != "" {
				t.Errorf("%s\nevents (-want +got):\n%s", tc.reason, diff)
			}
			if id == "" {
				return
			}
			if got := len(e.kms.Keys()); got != 1 {
				t.Errorf("%s\n%d KMS keys, want 1", tc.reason, got)
			}
			kk := e.kmsKey(id)
			if kk.State != tc.wantState {
				t.Errorf("%s\nKMS key state %s, want %s", tc.reason, kk.State, tc.wantState)
			}
			if tc.window > 0 {
				if kk.DeletionDate == nil {
					t.Fatalf("%s\nno deletion date", tc.reason)
				}
				if d := kk.DeletionDate.Sub(time.Now().AddDate(0, 0, tc.window)); d < -time.Minute || d > time.Minute {
					t.Errorf("%s\ndeletion date %s is not %d days away", tc.reason, kk.DeletionDate, tc.window)
				}
			}
			if tc.wantTags != nil {
				if diff := cmp.Diff(tc.wantTags, e.kmsTags(id), cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("%s\nKMS tags (-want +got):\n%s", tc.reason, diff)
				}
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
	// A failed (not lost) CreateKey made no key: the retry creates exactly one.
	e.kms.ResetCalls()
	e.mustReconcile()
	if diff := cmp.Diff([]string{"ListKeys", "CreateKey"}, e.kms.Calls()); diff != "" {
		t.Errorf("calls of the retry (-want +got):\n%s", diff)
	}
	if n := len(e.kms.Keys()); n != 1 {
		t.Errorf("%d KMS keys, want 1", n)
	}
}
