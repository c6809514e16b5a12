package controllers

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
	"github.com/kmsoperator/kms-operator/internal/kmsclient/kmsfake"
)

func TestKeyUpdate(t *testing.T) {
	baseTags := map[string]string{"team": "a", "env": "dev"}
	cases := map[string]struct {
		reason string
		base   []func(*kmsv1alpha1.Key) // besides description, policy, tags
		kms    func(ctx context.Context, f *kmsfake.Fake, id string)
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
			kms: func(ctx context.Context, f *kmsfake.Fake, id string) {
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
		drift  func(ctx context.Context, f *kmsfake.Fake, id string) error
		want   []string // all calls
		// requeue and Ready of the correcting reconcile.
		requeue string
		ready   string
	}{
		"Disabled": {
			reason: "A key disabled behind the operator's back is enabled again.",
			drift:  func(ctx context.Context, f *kmsfake.Fake, id string) error { return f.DisableKey(ctx, id) },
			want:   plus(keyReads, "EnableKey"), requeue: "resync", ready: "True/Available",
		},
		"Description": {
			reason: "A changed description is put back.",
			drift: func(ctx context.Context, f *kmsfake.Fake, id string) error {
				return f.UpdateDescription(ctx, id, "hacked")
			},
			want: plus(keyReads, "UpdateKeyDescription"), requeue: "resync", ready: "True/Available",
		},
		"Policy": {
			reason: "Another policy is replaced by the declared one.",
			drift: func(ctx context.Context, f *kmsfake.Fake, id string) error {
				return f.PutKeyPolicy(ctx, id, keyPolicyOther, false)
			},
			want: plus(keyReads, "PutKeyPolicy"), requeue: "resync", ready: "True/Available",
		},
		"ForeignTag": {
			reason: "A tag the spec does not declare is removed.",
			drift: func(ctx context.Context, f *kmsfake.Fake, id string) error {
				return f.TagKey(ctx, id, map[string]string{"intruder": "yes"})
			},
			want: plus(keyReads, "UntagResource"), requeue: "resync", ready: "True/Available",
		},
		"OwnershipTagRemoved": {
			reason: "An ownership tag removed by hand is put back.",
			drift: func(ctx context.Context, f *kmsfake.Fake, id string) error {
				return f.UntagKey(ctx, id, []string{kmsv1alpha1.TagOwnerUID})
			},
			want: plus(keyReads, "TagResource"), requeue: "resync", ready: "True/Available",
		},
		"RotationDisabled": {
			reason: "Rotation turned off by hand is turned on again.",
			drift:  func(ctx context.Context, f *kmsfake.Fake, id string) error { return f.DisableRotation(ctx, id) },
			want:   plus(keyReads, "EnableKeyRotation"), requeue: "resync", ready: "True/Available",
		},
		"DeletionScheduled": {
			reason: "A deletion scheduled by hand is cancelled and the key enabled again (KMS leaves it Disabled); the rest is read a second later.",
			drift: func(ctx context.Context, f *kmsfake.Fake, id string) error {
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
