package controllers

import (
	"testing"
	"time"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

func TestAwaitTags(t *testing.T) {
	owned := map[string]string{kmsv1alpha1.TagOwnerName: keyTestName}
	cases := map[string]struct {
		reason  string
		age     time.Duration
		tags    map[string]string
		adopted bool
		wait    bool
	}{
		"NewKeyNoTags": {
			reason: "A key created a moment ago that KMS lists without tags is waited for: ListResourceTags lags behind CreateKey.",
			age:    3 * time.Second, wait: true,
		},
		"NewKeyTagged": {
			reason: "A new key listed with its ownership tags is observed as it is.",
			age:    3 * time.Second, tags: owned,
		},
		"OldKeyNoTags": {
			reason: "Past the consistency window, missing ownership tags are drift to write back.",
			age:    10 * time.Minute,
		},
		"NewAdoptedKeyNoTags": {
			reason: "An adopted key's ownership tags are the operator's to add, however new the key.",
			age:    3 * time.Second, adopted: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := &KeyReconciler{Options: Options{ConsistencyWindow: time.Minute}}
			key := newKey()
			if tc.adopted {
				key.Spec.KeyID = "1234abcd-12ab-34cd-56ef-1234567890ab"
			}
			k := &kmsclient.Key{ID: "k", CreationDate: time.Now().Add(-tc.age)}
			err := r.awaitTags(key, k, tc.tags)
			if got := err != nil && isPropagating(err); got != tc.wait || (err != nil && !got) {
				t.Errorf("%s\nawaitTags = %v, want a wait: %v", tc.reason, err, tc.wait)
			}
		})
	}
}
