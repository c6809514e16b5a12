package v1alpha1_test

import (
	"testing"

	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kmsoperator/kms-operator/api/v1alpha1"
)

// TestDefaultsMatchTheCRD checks the spec default methods the controllers use
// against the API server's own defaulting and CEL rules, so the two cannot
// drift apart: each object is created with the field omitted, read back, and
// the method's answer compared with what the API server stored or accepts.
func TestDefaultsMatchTheCRD(t *testing.T) {
	specs := []v1alpha1.KeySpecType{"SYMMETRIC_DEFAULT", "RSA_2048", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P521",
		"ECC_SECG_P256K1", "ECC_NIST_EDWARDS25519", "HMAC_256", "SM2", "ML_DSA_65", "ML_KEM_768"}
	usages := []v1alpha1.KeyUsageType{"ENCRYPT_DECRYPT", "SIGN_VERIFY", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT", "ENCAPSULATE_DECAPSULATE"}
	for _, spec := range specs {
		t.Run("keyUsage/"+string(spec), func(t *testing.T) {
			// The keyUsage immutability rule computes the default in CEL: only
			// the method's answer may be set on a Key created without one.
			key := newKey(func(s *v1alpha1.KeySpec) { s.KeySpec = spec })
			if err := k8s.Create(ctx(t), key); err != nil {
				t.Fatal(err)
			}
			want := (&v1alpha1.KeySpec{KeySpec: spec}).EffectiveKeyUsage()
			for _, usage := range usages {
				fresh := &v1alpha1.Key{}
				if err := k8s.Get(ctx(t), client.ObjectKeyFromObject(key), fresh); err != nil {
					t.Fatal(err)
				}
				fresh.Spec.KeyUsage = usage
				err := k8s.Update(ctx(t), fresh)
				if accepted := err == nil; accepted != (usage == want) {
					t.Errorf("setting keyUsage %s on a %s key created without one: accepted=%v (%v); EffectiveKeyUsage says %s",
						usage, spec, accepted, err, want)
				}
			}
		})
	}

	t.Run("omitted fields", func(t *testing.T) {
		key := newKey(func(s *v1alpha1.KeySpec) { s.Rotation = &v1alpha1.KeyRotation{Enabled: true} })
		if err := k8s.Create(ctx(t), key); err != nil {
			t.Fatal(err)
		}
		stored := &v1alpha1.Key{}
		if err := k8s.Get(ctx(t), client.ObjectKeyFromObject(key), stored); err != nil {
			t.Fatal(err)
		}
		empty := &v1alpha1.KeySpec{Rotation: &v1alpha1.KeyRotation{Enabled: true}}
		_, period := empty.EffectiveRotation()
		checks := []struct {
			field     string
			stored    any
			effective any
		}{
			{"keySpec", stored.Spec.KeySpec, empty.EffectiveKeySpec()},
			{"origin", stored.Spec.Origin, empty.EffectiveOrigin()},
			{"pendingWindowInDays", stored.Spec.PendingWindowInDays, empty.EffectivePendingWindowInDays()},
			{"rotation.periodInDays", stored.Spec.Rotation.PeriodInDays, period},
			{"enabled", ptr.Deref(stored.Spec.Enabled, false), empty.WantsEnabled()},
			{"managementPolicy Observe", stored.Spec.Observes(), empty.Observes()},
		}
		for _, c := range checks {
			if c.stored != c.effective {
				t.Errorf("%s: the API server defaults it to %v, the controllers' default is %v", c.field, c.stored, c.effective)
			}
		}
	})
}
