package main

import (
	"runtime/debug"
	"strings"
	"testing"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
)

func TestSetMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	cases := map[string]struct {
		limit, gomemlimit string
		want              int64
	}{
		"90% of the container's limit": {"268435456", "", 241591905},
		"no limit in the container":    {"", "", 0},
		"an explicit GOMEMLIMIT wins":  {"268435456", "200MiB", 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Setenv("GOMEMLIMIT", tc.gomemlimit)
			if got := setMemoryLimit(tc.limit); got != tc.want {
				t.Errorf("setMemoryLimit(%q) = %d, want %d", tc.limit, got, tc.want)
			}
		})
	}
}

func TestSetGCPercent(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	cases := map[string]struct {
		gogc string
		want int
	}{
		"the operator's default": {"", defaultGCPercent},
		"GOGC wins":              {"200", 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			debug.SetGCPercent(100)
			got := setGCPercent(tc.gogc)
			now := debug.SetGCPercent(100)
			if got != tc.want || (tc.want > 0 && now != tc.want) {
				t.Errorf("setGCPercent(%q) = %d (GC percent now %d), want %d", tc.gogc, got, now, tc.want)
			}
		})
	}
}

// TestSlimObject: cached objects lose what the operator never reads, and
// Keys share the strings they repeat.
func TestSlimObject(t *testing.T) {
	newKey := func() *kmsv1alpha1.Key {
		policy := strings.Repeat("p", 64)
		return &kmsv1alpha1.Key{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{corev1.LastAppliedConfigAnnotation: "{}", "keep": "me"},
				ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
			Spec:   kmsv1alpha1.KeySpec{Policy: policy, Tags: map[string]string{"team": "payments"}},
			Status: kmsv1alpha1.KeyStatus{Conditions: []metav1.Condition{{Type: "Ready", Reason: "Available", Message: strings.Clone("the KMS key matches the spec")}}},
		}
	}
	a, b := newKey(), newKey()
	for _, k := range []*kmsv1alpha1.Key{a, b} {
		if _, err := slimObject(k); err != nil {
			t.Fatal(err)
		}
	}
	if len(a.ManagedFields) != 0 || a.Annotations[corev1.LastAppliedConfigAnnotation] != "" || a.Annotations["keep"] != "me" {
		t.Errorf("metadata after slimObject: %+v", a.ObjectMeta)
	}
	if unsafe.StringData(a.Spec.Policy) != unsafe.StringData(b.Spec.Policy) ||
		unsafe.StringData(a.Status.Conditions[0].Message) != unsafe.StringData(b.Status.Conditions[0].Message) {
		t.Error("two Keys with the same policy and condition message hold two copies of them")
	}
}
