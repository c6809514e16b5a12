package v1alpha1_test

// Admission tests for the CRDs in config/crd/bases: they install the generated
// CRDs in a real kube-apiserver (envtest) and check that the OpenAPI schema,
// defaults and CEL rules accept what KMS accepts and reject the rest with a
// message that names the field. Run them with `make test`.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kmsoperator/kms-operator/api/v1alpha1"
)

const (
	testNamespace = "default"
	missingBins   = "run `make test` (needs bin/kube-apiserver and bin/etcd; `make k8s-bins` builds them)"
)

var (
	k8s     client.Client
	scheme  = runtime.NewScheme()
	nameSeq atomic.Int64
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	logf.SetLogger(logr.Discard())

	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		var err error
		if assets, err = filepath.Abs(filepath.Join("..", "..", "bin")); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
			return 1
		}
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(assets, bin)); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: %s not found in %s: %s\n", bin, assets, missingBins)
			return 1
		}
	}

	for _, add := range []func(*runtime.Scheme) error{v1alpha1.AddToScheme, apiextensionsv1.AddToScheme} {
		if err := add(scheme); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: building scheme: %v\n", err)
			return 1
		}
	}

	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: starting envtest (kube-apiserver and etcd from %s) or installing the CRDs: %v\n%s\n", assets, err, missingBins)
		_ = env.Stop()
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
		}
	}()

	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: creating client: %v\n", err)
		return 1
	}
	return m.Run()
}

// uniqueName returns a fresh object name so that the cases never collide.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, nameSeq.Add(1))
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// newKey returns a Key with the given spec changes applied to an empty spec.
func newKey(mut func(*v1alpha1.KeySpec)) *v1alpha1.Key {
	k := &v1alpha1.Key{ObjectMeta: metav1.ObjectMeta{Name: uniqueName("key"), Namespace: testNamespace}}
	if mut != nil {
		mut(&k.Spec)
	}
	return k
}

func newAlias(mut func(*v1alpha1.AliasSpec)) *v1alpha1.Alias {
	a := &v1alpha1.Alias{
		ObjectMeta: metav1.ObjectMeta{Name: uniqueName("alias"), Namespace: testNamespace},
		Spec: v1alpha1.AliasSpec{
			Name:         "alias/" + uniqueName("app"),
			TargetKeyRef: &v1alpha1.LocalObjectReference{Name: "my-key"},
		},
	}
	if mut != nil {
		mut(&a.Spec)
	}
	return a
}

func newReplica(mut func(*v1alpha1.ReplicaKeySpec)) *v1alpha1.ReplicaKey {
	r := &v1alpha1.ReplicaKey{
		ObjectMeta: metav1.ObjectMeta{Name: uniqueName("replica"), Namespace: testNamespace},
		Spec:       v1alpha1.ReplicaKeySpec{PrimaryKeyRef: &v1alpha1.LocalObjectReference{Name: "my-key"}, Region: "eu-west-1"},
	}
	if mut != nil {
		mut(&r.Spec)
	}
	return r
}

func newGrant(mut func(*v1alpha1.GrantSpec)) *v1alpha1.Grant {
	g := &v1alpha1.Grant{
		ObjectMeta: metav1.ObjectMeta{Name: uniqueName("grant"), Namespace: testNamespace},
		Spec: v1alpha1.GrantSpec{
			KeyRef:           &v1alpha1.LocalObjectReference{Name: "my-key"},
			GranteePrincipal: "arn:aws:iam::111122223333:role/app",
			Operations:       []v1alpha1.GrantOperation{"Decrypt", "GenerateDataKey"},
		},
	}
	if mut != nil {
		mut(&g.Spec)
	}
	return g
}

// toUnstructured converts obj so that a case can send a manifest the Go types
// cannot express (a missing required field).
func toUnstructured(obj client.Object, mut func(map[string]any)) *unstructured.Unstructured {
	gvks, _, err := scheme.ObjectKinds(obj)
	if err != nil {
		panic(err)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		panic(err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvks[0])
	mut(m)
	return u
}

func tags(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("tag-%02d", i)] = "v"
	}
	return m
}

// requireInvalid checks that err is a 422 Invalid whose message contains want.
func requireInvalid(t *testing.T, err error, want, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted, want rejection (%s) containing %q", reason, want)
	}
	if !apierrors.IsInvalid(err) {
		t.Fatalf("error is %v (reason %s), want an Invalid error (%s) containing %q", err, apierrors.ReasonForError(err), reason, want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error does not contain %q (%s):\n%v", want, reason, err)
	}
}

// checkDefaultedKey checks that a Key created with an empty or missing spec
// got every default.
func checkDefaultedKey(t *testing.T, got client.Object) {
	t.Helper()
	k, ok := got.(*v1alpha1.Key)
	if !ok {
		k = &v1alpha1.Key{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(got.(*unstructured.Unstructured).Object, k); err != nil {
			t.Fatal(err)
		}
	}
	want := v1alpha1.KeySpec{
		KeySpec:             v1alpha1.KeySpecSymmetricDefault,
		Origin:              v1alpha1.OriginAWSKMS,
		Enabled:             ptr.To(true),
		DeletionPolicy:      v1alpha1.DeletionPolicyDelete,
		PendingWindowInDays: 30,
		ManagementPolicy:    v1alpha1.ManagementPolicyManage,
	}
	if !reflect.DeepEqual(k.Spec, want) {
		t.Errorf("defaulted spec:\n got %+v\nwant %+v", k.Spec, want)
	}
}

func TestAccepted(t *testing.T) {
	for _, tc := range []struct {
		name   string
		reason string
		obj    client.Object
		// check, when set, inspects the object as the API server returned it.
		check func(t *testing.T, got client.Object)
	}{
		{
			name:   "minimal Key gets its defaults",
			reason: "an empty spec is a valid symmetric key; the defaults document what the operator will create",
			obj:    newKey(nil),
			check:  checkDefaultedKey,
		},
		{
			name:   "Key without spec gets its defaults",
			reason: "a manifest with no spec at all is the minimal symmetric key too; spec must be defaulted so the controller never sees an empty keySpec",
			obj:    toUnstructured(newKey(nil), func(m map[string]any) { delete(m, "spec") }),
			check:  checkDefaultedKey,
		},
		{
			name:   "rotation enabled gets the default period",
			reason: "rotation: {enabled: true} rotates every 365 days, as KMS does by default",
			obj: newKey(func(s *v1alpha1.KeySpec) {
				s.Rotation = &v1alpha1.KeyRotation{Enabled: true}
			}),
			check: func(t *testing.T, got client.Object) {
				r := got.(*v1alpha1.Key).Spec.Rotation
				if r == nil || !r.Enabled || r.PeriodInDays != 365 {
					t.Errorf("rotation = %+v, want enabled with periodInDays 365", r)
				}
			},
		},
		{
			name:   "Key with every field",
			reason: "every field set to a valid value at once; nothing is dropped or changed",
			obj: newKey(func(s *v1alpha1.KeySpec) {
				*s = v1alpha1.KeySpec{
					Description: "payments data key",
					KeySpec:     v1alpha1.KeySpecSymmetricDefault,
					KeyUsage:    "ENCRYPT_DECRYPT",
					Origin:      v1alpha1.OriginAWSKMS,
					MultiRegion: true,
					Enabled:     ptr.To(false),
					Rotation: &v1alpha1.KeyRotation{
						Enabled: true, PeriodInDays: 180, OnDemandRequest: "2025-01-01",
					},
					Policy:                         `{"Version":"2012-10-17","Statement":[]}`,
					BypassPolicyLockoutSafetyCheck: true,
					Tags:                           map[string]string{"team": "payments", "env": ""},
					DeletionPolicy:                 v1alpha1.DeletionPolicyRetain,
					PendingWindowInDays:            7,
					KeyID:                          "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
					ManagementPolicy:               v1alpha1.ManagementPolicyManage,
					Region:                         "eu-west-1",
				}
			}),
			check: func(t *testing.T, got client.Object) {
				k := got.(*v1alpha1.Key)
				if k.Spec.Rotation == nil || k.Spec.Rotation.PeriodInDays != 180 || k.Spec.PendingWindowInDays != 7 ||
					k.Spec.Region != "eu-west-1" || k.Spec.Enabled == nil || *k.Spec.Enabled || !k.Spec.MultiRegion {
					t.Errorf("spec changed by the API server: %+v", k.Spec)
				}
			},
		},
		{
			name:   "RSA_2048 SIGN_VERIFY",
			reason: "RSA keys sign",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.KeySpec = "RSA_2048"; s.KeyUsage = "SIGN_VERIFY" }),
		},
		{
			name:   "RSA_4096 ENCRYPT_DECRYPT",
			reason: "RSA keys encrypt",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.KeySpec = "RSA_4096"; s.KeyUsage = "ENCRYPT_DECRYPT" }),
		},
		{
			name:   "ECC_NIST_P256 KEY_AGREEMENT",
			reason: "NIST curves derive shared secrets",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.KeySpec = "ECC_NIST_P256"; s.KeyUsage = "KEY_AGREEMENT" }),
		},
		{
			name:   "ECC_SECG_P256K1 SIGN_VERIFY",
			reason: "secp256k1 only signs",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.KeySpec = "ECC_SECG_P256K1"; s.KeyUsage = "SIGN_VERIFY" }),
		},
		{
			name:   "HMAC_256 GENERATE_VERIFY_MAC",
			reason: "HMAC keys only MAC",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.KeySpec = "HMAC_256"; s.KeyUsage = "GENERATE_VERIFY_MAC" }),
		},
		{
			name:   "ML_KEM_768 ENCAPSULATE_DECAPSULATE",
			reason: "ML-KEM keys encapsulate",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.KeySpec = "ML_KEM_768"; s.KeyUsage = "ENCAPSULATE_DECAPSULATE" }),
		},
		{
			name:   "SM2 KEY_AGREEMENT",
			reason: "SM2 allows all three asymmetric usages",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.KeySpec = "SM2"; s.KeyUsage = "KEY_AGREEMENT" }),
		},
		{
			name:   "ML_DSA_65 without keyUsage",
			reason: "keyUsage is optional for every keySpec",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.KeySpec = "ML_DSA_65" }),
		},
		{
			name:   "RSA key with rotation disabled",
			reason: "an explicit rotation block that turns nothing on is fine on keys that cannot rotate",
			obj: newKey(func(s *v1alpha1.KeySpec) {
				s.KeySpec = "RSA_2048"
				s.Rotation = &v1alpha1.KeyRotation{}
			}),
		},
		{
			name:   "EXTERNAL origin without rotation",
			reason: "imported key material is supported, it just cannot rotate",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.Origin = v1alpha1.OriginExternal }),
		},
		{
			name:   "EXTERNAL key with its material in a Secret and on-demand rotation",
			reason: "KMS rotates symmetric keys with imported material on demand (since 2025); validTo is optional",
			obj: newKey(func(s *v1alpha1.KeySpec) {
				s.Origin = v1alpha1.OriginExternal
				s.Rotation = &v1alpha1.KeyRotation{OnDemandRequest: "1"}
				s.KeyMaterial = &v1alpha1.KeyMaterialSource{SecretRef: v1alpha1.SecretKeyReference{Name: "material", Key: "key.bin"},
					ValidTo: &metav1.Time{Time: time.Now().Add(24 * time.Hour)}}
			}),
		},
		{
			name:   "HMAC key with imported material",
			reason: "KMS imports HMAC and asymmetric material too",
			obj: newKey(func(s *v1alpha1.KeySpec) {
				s.KeySpec, s.Origin = "HMAC_256", v1alpha1.OriginExternal
				s.KeyMaterial = &v1alpha1.KeyMaterialSource{SecretRef: v1alpha1.SecretKeyReference{Name: "material", Key: "hmac"}}
			}),
		},
		{
			name:   "multi-Region key with a primary region",
			reason: "failover is declared on the multi-Region Key",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.MultiRegion, s.PrimaryRegion = true, "eu-west-1" }),
		},
		{
			name:   "ReplicaKey of a Key",
			reason: "a replica names its primary Key and its own region; enabled, deletionPolicy, pendingWindowInDays and managementPolicy get the Key's defaults",
			obj:    newReplica(nil),
			check: func(t *testing.T, got client.Object) {
				s := got.(*v1alpha1.ReplicaKey).Spec
				if !s.WantsEnabled() || s.DeletionPolicy != v1alpha1.DeletionPolicyDelete || s.PendingWindowInDays != 30 ||
					s.ManagementPolicy != v1alpha1.ManagementPolicyManage || s.PrimaryKeyRef.Kind != v1alpha1.KindKey {
					t.Errorf("defaults not applied: %+v", s)
				}
			},
		},
		{
			name:   "ReplicaKey of a key ARN",
			reason: "a primary no Key of the namespace manages is named by its mrk- ARN",
			obj: newReplica(func(s *v1alpha1.ReplicaKeySpec) {
				s.PrimaryKeyRef, s.PrimaryKeyARN = nil, "arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"
			}),
		},
		{
			name:   "Alias on a ReplicaKey",
			reason: "an Alias on a replica lives in the replica's region",
			obj: newAlias(func(s *v1alpha1.AliasSpec) {
				s.TargetKeyRef = &v1alpha1.LocalObjectReference{Name: "app-eu", Kind: v1alpha1.KindReplicaKey}
			}),
		},
		{
			name:   "on-demand rotation alone on a symmetric key",
			reason: "on-demand rotation does not need automatic rotation",
			obj: newKey(func(s *v1alpha1.KeySpec) {
				s.Rotation = &v1alpha1.KeyRotation{OnDemandRequest: "1"}
			}),
		},
		{
			name:   "rotation period bounds 90 and 2560",
			reason: "the KMS limits are inclusive",
			obj: newKey(func(s *v1alpha1.KeySpec) {
				s.Rotation = &v1alpha1.KeyRotation{Enabled: true, PeriodInDays: 90}
				s.PendingWindowInDays = 30
			}),
		},
		{
			name:   "rotation period 2560",
			reason: "the KMS upper limit is inclusive",
			obj: newKey(func(s *v1alpha1.KeySpec) {
				s.Rotation = &v1alpha1.KeyRotation{Enabled: true, PeriodInDays: 2560}
			}),
		},
		{
			name:   "46 tags with a 128-character key and a 256-character value",
			reason: "KMS allows 50 tags, the operator adds 4; the length limits are inclusive",
			obj: newKey(func(s *v1alpha1.KeySpec) {
				s.Tags = tags(45)
				s.Tags[strings.Repeat("k", 128)] = strings.Repeat("v", 256)
			}),
		},
		{
			name:   "regions of every partition",
			reason: "aws-cn, aws-us-gov, aws-iso*, aws-eusc regions are all KMS regions",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.Region = "eusc-de-east-1" }),
		},
		{
			name:   "keyID ARN of spec.region",
			reason: "an ARN and spec.region that agree",
			obj: newKey(func(s *v1alpha1.KeySpec) {
				s.KeyID = "arn:aws-cn:kms:cn-north-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
				s.Region = "cn-north-1"
			}),
		},
		{
			name:   "Observe with keyID",
			reason: "Observe reads the key named by keyID",
			obj: newKey(func(s *v1alpha1.KeySpec) {
				s.ManagementPolicy = v1alpha1.ManagementPolicyObserve
				s.KeyID = "1234abcd-12ab-34cd-56ef-1234567890ab"
			}),
		},
		{
			name:   "Alias with targetKeyRef",
			reason: "an alias may follow a Key object",
			obj:    newAlias(nil),
		},
		{
			name:   "Alias with targetKeyID",
			reason: "an alias may name a key directly",
			obj: newAlias(func(s *v1alpha1.AliasSpec) {
				s.Name = "alias/team/app_key-1"
				s.TargetKeyRef = nil
				s.TargetKeyID = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
			}),
		},
		{
			name:   "Alias name of 256 characters",
			reason: "the KMS limit is inclusive",
			obj:    newAlias(func(s *v1alpha1.AliasSpec) { s.Name = "alias/" + strings.Repeat("a", 250) }),
		},
		{
			name:   "Grant with keyRef, operations and an encryption-context subset",
			reason: "the usual grant",
			obj: newGrant(func(s *v1alpha1.GrantSpec) {
				s.RetiringPrincipal = "arn:aws:iam::111122223333:role/ops"
				s.Constraints = &v1alpha1.GrantConstraints{EncryptionContextSubset: map[string]string{"app": "payments"}}
				s.OnDelete = v1alpha1.GrantOnDeleteRetire
			}),
			check: func(t *testing.T, got client.Object) {
				if d := got.(*v1alpha1.Grant).Spec.OnDelete; d != v1alpha1.GrantOnDeleteRetire {
					t.Errorf("onDelete = %q, want Retire", d)
				}
			},
		},
		{
			name:   "Grant with keyID and name",
			reason: "a grant may name a key directly and choose its KMS name",
			obj: newGrant(func(s *v1alpha1.GrantSpec) {
				s.KeyRef = nil
				s.KeyID = "1234abcd-12ab-34cd-56ef-1234567890ab"
				s.Name = "team/app:grant_1-a"
				s.Operations = []v1alpha1.GrantOperation{"Sign", "Verify", "GetPublicKey"}
				s.Constraints = &v1alpha1.GrantConstraints{EncryptionContextEquals: map[string]string{"a": "b"}}
			}),
			check: func(t *testing.T, got client.Object) {
				if d := got.(*v1alpha1.Grant).Spec.OnDelete; d != v1alpha1.GrantOnDeleteRevoke {
					t.Errorf("onDelete = %q, want the default Revoke", d)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := k8s.Create(ctx(t), tc.obj); err != nil {
				t.Fatalf("rejected (%s): %v", tc.reason, err)
			}
			if tc.check != nil {
				tc.check(t, tc.obj)
			}
		})
	}
}

func TestRejected(t *testing.T) {
	const keyUsageMsg = "spec.keyUsage is not allowed for this keySpec"
	const rotationMsg = "spec.rotation.enabled: automatic rotation is only for keySpec SYMMETRIC_DEFAULT with origin AWS_KMS"
	const onDemandMsg = "spec.rotation.onDemandRequest: on-demand rotation is only for keySpec SYMMETRIC_DEFAULT"
	for _, tc := range []struct {
		name   string
		reason string
		obj    client.Object
		want   string
	}{
		{
			name:   "bad keySpec",
			reason: "not a KMS key spec",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.KeySpec = "AES_256" }),
			want:   `spec.keySpec: Unsupported value: "AES_256"`,
		},
		{
			name:   "bad keyUsage",
			reason: "not a KMS key usage",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.KeyUsage = "WRAP" }),
			want:   `spec.keyUsage: Unsupported value: "WRAP"`,
		},
		{
			name:   "SYMMETRIC_DEFAULT SIGN_VERIFY",
			reason: "symmetric keys only encrypt",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.KeyUsage = "SIGN_VERIFY" }),
			want:   keyUsageMsg,
		},
		{
			name:   "HMAC_256 ENCRYPT_DECRYPT",
			reason: "HMAC keys only MAC",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.KeySpec = "HMAC_256"; s.KeyUsage = "ENCRYPT_DECRYPT" }),
			want:   keyUsageMsg,
		},
		{
			name:   "ECC_SECG_P256K1 KEY_AGREEMENT",
			reason: "secp256k1 does not do key agreement in KMS",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.KeySpec = "ECC_SECG_P256K1"; s.KeyUsage = "KEY_AGREEMENT" }),
			want:   keyUsageMsg,
		},
		{
			name:   "ML_KEM_512 SIGN_VERIFY",
			reason: "ML-KEM keys only encapsulate",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.KeySpec = "ML_KEM_512"; s.KeyUsage = "SIGN_VERIFY" }),
			want:   keyUsageMsg,
		},
		{
			name:   "rotation enabled on an RSA key",
			reason: "KMS rotates only symmetric-encryption keys",
			obj: newKey(func(s *v1alpha1.KeySpec) {
				s.KeySpec = "RSA_2048"
				s.Rotation = &v1alpha1.KeyRotation{Enabled: true}
			}),
			want: rotationMsg,
		},
		{
			name:   "rotation enabled on EXTERNAL origin",
			reason: "KMS cannot rotate imported key material",
			obj: newKey(func(s *v1alpha1.KeySpec) {
				s.Origin = v1alpha1.OriginExternal
				s.Rotation = &v1alpha1.KeyRotation{Enabled: true}
			}),
			want: rotationMsg,
		},
		{
			name:   "onDemandRequest on an HMAC key",
			reason: "KMS rotates only symmetric-encryption keys on demand",
			obj: newKey(func(s *v1alpha1.KeySpec) {
				s.KeySpec = "HMAC_256"
				s.Rotation = &v1alpha1.KeyRotation{OnDemandRequest: "2025-01-01"}
			}),
			want: onDemandMsg,
		},
		{
			name:   "keyMaterial on an AWS_KMS key",
			reason: "KMS makes the material of AWS_KMS keys; there is nothing to import",
			obj: newKey(func(s *v1alpha1.KeySpec) {
				s.KeyMaterial = &v1alpha1.KeyMaterialSource{SecretRef: v1alpha1.SecretKeyReference{Name: "m", Key: "k"}}
			}),
			want: "spec.keyMaterial is only for origin EXTERNAL",
		},
		{
			name:   "keyMaterial on a multi-Region key",
			reason: "each replica would need the same material imported in its region, which the operator does not do",
			obj: newKey(func(s *v1alpha1.KeySpec) {
				s.Origin, s.MultiRegion = v1alpha1.OriginExternal, true
				s.KeyMaterial = &v1alpha1.KeyMaterialSource{SecretRef: v1alpha1.SecretKeyReference{Name: "m", Key: "k"}}
			}),
			want: "spec.keyMaterial: imported material for multi-Region keys is not supported",
		},
		{
			name:   "keyMaterial with Observe",
			reason: "an observed key is never written, so nothing would be imported",
			obj: newKey(func(s *v1alpha1.KeySpec) {
				s.Origin, s.ManagementPolicy, s.KeyID = v1alpha1.OriginExternal, v1alpha1.ManagementPolicyObserve, "1234abcd-12ab-34cd-56ef-1234567890ab"
				s.KeyMaterial = &v1alpha1.KeyMaterialSource{SecretRef: v1alpha1.SecretKeyReference{Name: "m", Key: "k"}}
			}),
			want: "spec.keyMaterial: managementPolicy Observe never imports key material",
		},
		{
			name:   "keyMaterial entry with a slash",
			reason: "Secret data keys are [-._a-zA-Z0-9]+",
			obj: newKey(func(s *v1alpha1.KeySpec) {
				s.Origin = v1alpha1.OriginExternal
				s.KeyMaterial = &v1alpha1.KeyMaterialSource{SecretRef: v1alpha1.SecretKeyReference{Name: "m", Key: "a/b"}}
			}),
			want: "spec.keyMaterial.secretRef.key",
		},
		{
			name:   "primaryRegion on a single-Region key",
			reason: "only a multi-Region key has a primary region to fail over",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.PrimaryRegion = "eu-west-1" }),
			want:   "spec.primaryRegion is only for multiRegion: true keys",
		},
		{
			name:   "ReplicaKey with both primaries",
			reason: "a replica has one primary key",
			obj: newReplica(func(s *v1alpha1.ReplicaKeySpec) {
				s.PrimaryKeyARN = "arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"
			}),
			want: "exactly one of spec.primaryKeyRef or spec.primaryKeyARN must be set",
		},
		{
			name:   "ReplicaKey of a single-Region key ARN",
			reason: "only multi-Region keys (mrk-) have replicas",
			obj: newReplica(func(s *v1alpha1.ReplicaKeySpec) {
				s.PrimaryKeyRef, s.PrimaryKeyARN = nil, "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
			}),
			want: "spec.primaryKeyARN must be the ARN of a multi-Region key",
		},
		{
			name:   "ReplicaKey in its primary's region",
			reason: "a replica lives in another region than its primary",
			obj: newReplica(func(s *v1alpha1.ReplicaKeySpec) {
				s.PrimaryKeyRef, s.PrimaryKeyARN = nil, "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"
			}),
			want: "spec.region is the region of spec.primaryKeyARN",
		},
		{
			name:   "ReplicaKey without a region",
			reason: "the region is the point of a replica",
			obj:    toUnstructured(newReplica(nil), func(m map[string]any) { delete(m["spec"].(map[string]any), "region") }),
			want:   "spec.region: Required value",
		},
		{
			name:   "ReplicaKey of a ReplicaKey",
			reason: "a replica replicates a primary Key",
			obj: newReplica(func(s *v1alpha1.ReplicaKeySpec) {
				s.PrimaryKeyRef.Kind = v1alpha1.KindReplicaKey
			}),
			want: "spec.primaryKeyRef names a Key",
		},
		{
			name:   "ReplicaKey with 46 tags",
			reason: "KMS allows 50 tags and the operator adds 5 to a replica",
			obj:    newReplica(func(s *v1alpha1.ReplicaKeySpec) { s.Tags = tags(46) }),
			want:   "spec.tags: at most 45 tags",
		},
		{
			name:   "periodInDays 89",
			reason: "below the KMS minimum of 90",
			obj: newKey(func(s *v1alpha1.KeySpec) {
				s.Rotation = &v1alpha1.KeyRotation{Enabled: true, PeriodInDays: 89}
			}),
			want: "spec.rotation.periodInDays: Invalid value: 89",
		},
		{
			name:   "periodInDays 2561",
			reason: "above the KMS maximum of 2560",
			obj: newKey(func(s *v1alpha1.KeySpec) {
				s.Rotation = &v1alpha1.KeyRotation{Enabled: true, PeriodInDays: 2561}
			}),
			want: "spec.rotation.periodInDays: Invalid value: 2561",
		},
		{
			name:   "onDemandRequest of 129 characters",
			reason: "the operator bounds the request marker",
			obj: newKey(func(s *v1alpha1.KeySpec) {
				s.Rotation = &v1alpha1.KeyRotation{OnDemandRequest: strings.Repeat("x", 129)}
			}),
			want: "spec.rotation.onDemandRequest: Too long",
		},
		{
			name:   "pendingWindowInDays 6",
			reason: "below the KMS minimum of 7",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.PendingWindowInDays = 6 }),
			want:   "spec.pendingWindowInDays: Invalid value: 6",
		},
		{
			name:   "pendingWindowInDays 31",
			reason: "above the KMS maximum of 30",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.PendingWindowInDays = 31 }),
			want:   "spec.pendingWindowInDays: Invalid value: 31",
		},
		{
			name:   "tag with the aws: prefix",
			reason: "AWS reserves aws: tag keys",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.Tags = map[string]string{"aws:cloudformation:stack": "x"} }),
			want:   "spec.tags: keys starting with 'aws:' are reserved by AWS",
		},
		{
			name:   "tag with the operator's prefix",
			reason: "the operator's ownership tags cannot be declared",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.Tags = map[string]string{v1alpha1.TagOwnerUID: "x"} }),
			want:   "spec.tags: keys starting with 'kms.kmsoperator.io/' are reserved by the operator",
		},
		{
			name:   "47 tags",
			reason: "KMS allows 50 tags per key and the operator adds 4 ownership tags: 46 is the most that passes KMS",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.Tags = tags(47) }),
			want:   "spec.tags: at most 46 tags: KMS allows 50 per key and the operator adds 4 ownership tags of its own",
		},
		{
			name:   "keyID alias",
			reason: "an alias can move to another key: adopting by alias would bind the object to whatever it points at",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.KeyID = "alias/app" }),
			want:   "spec.keyID must be a key id or key ARN, not an alias",
		},
		{
			name:   "keyID alias ARN",
			reason: "an alias ARN is an alias too",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.KeyID = "arn:aws:kms:us-east-1:111122223333:alias/app" }),
			want:   "spec.keyID must be a key id or key ARN, not an alias",
		},
		{
			name:   "keyID ARN of another region than spec.region",
			reason: "a key lives in one region; the ARN names it",
			obj: newKey(func(s *v1alpha1.KeySpec) {
				s.KeyID = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
				s.Region = "us-east-1"
			}),
			want: "spec.keyID is an ARN of another region than spec.region",
		},
		{
			name:   "tag key of 129 characters",
			reason: "KMS tag keys are at most 128 characters",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.Tags = map[string]string{strings.Repeat("k", 129): "v"} }),
			want:   "spec.tags: keys must be 1-128 characters and values at most 256",
		},
		{
			name:   "tag value of 257 characters",
			reason: "KMS tag values are at most 256 characters",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.Tags = map[string]string{"k": strings.Repeat("v", 257)} }),
			want:   "spec.tags: keys must be 1-128 characters and values at most 256",
		},
		{
			name:   "description of 8193 characters",
			reason: "KMS descriptions are at most 8192 characters",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.Description = strings.Repeat("d", 8193) }),
			want:   "spec.description: Too long",
		},
		{
			name:   "Observe without keyID",
			reason: "there is no key to observe",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.ManagementPolicy = v1alpha1.ManagementPolicyObserve }),
			want:   "spec.keyID is required with managementPolicy Observe",
		},
		{
			name:   "bad managementPolicy",
			reason: "only Manage and Observe exist",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.ManagementPolicy = "ReadOnly" }),
			want:   `spec.managementPolicy: Unsupported value: "ReadOnly"`,
		},
		{
			name:   "bad deletionPolicy",
			reason: "only Delete and Retain exist",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.DeletionPolicy = "Orphan" }),
			want:   `spec.deletionPolicy: Unsupported value: "Orphan"`,
		},
		{
			name:   "bad origin",
			reason: "custom key stores are not supported",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.Origin = "AWS_CLOUDHSM" }),
			want:   `spec.origin: Unsupported value: "AWS_CLOUDHSM"`,
		},
		{
			name:   "bad region",
			reason: "not an AWS region name",
			obj:    newKey(func(s *v1alpha1.KeySpec) { s.Region = "EU_WEST_1" }),
			want:   `spec.region: Invalid value: "EU_WEST_1"`,
		},
		{
			name:   "Alias name without alias/",
			reason: "KMS alias names start with alias/",
			obj:    newAlias(func(s *v1alpha1.AliasSpec) { s.Name = "my-alias-name" }),
			want:   `spec.name: Invalid value: "my-alias-name"`,
		},
		{
			name:   "Alias name alias/aws/x",
			reason: "AWS reserves alias/aws/",
			obj:    newAlias(func(s *v1alpha1.AliasSpec) { s.Name = "alias/aws/x" }),
			want:   "spec.name: the alias/aws/ prefix is reserved by AWS",
		},
		{
			name:   "Alias name with a space",
			reason: "KMS alias names allow only letters, digits, '/', '_' and '-'",
			obj:    newAlias(func(s *v1alpha1.AliasSpec) { s.Name = "alias/a b" }),
			want:   `spec.name: Invalid value: "alias/a b"`,
		},
		{
			name:   "Alias name of 257 characters",
			reason: "KMS alias names are at most 256 characters",
			obj:    newAlias(func(s *v1alpha1.AliasSpec) { s.Name = "alias/" + strings.Repeat("a", 251) }),
			want:   "spec.name: Too long",
		},
		{
			name:   "Alias with targetKeyRef and targetKeyID",
			reason: "the target must be unambiguous",
			obj:    newAlias(func(s *v1alpha1.AliasSpec) { s.TargetKeyID = "1234abcd-12ab-34cd-56ef-1234567890ab" }),
			want:   "exactly one of spec.targetKeyRef or spec.targetKeyID must be set",
		},
		{
			name:   "Alias with no target",
			reason: "an alias must point at a key",
			obj:    newAlias(func(s *v1alpha1.AliasSpec) { s.TargetKeyRef = nil }),
			want:   "exactly one of spec.targetKeyRef or spec.targetKeyID must be set",
		},
		{
			name:   "Alias targetKeyRef with an empty name",
			reason: "a reference must name something",
			obj:    newAlias(func(s *v1alpha1.AliasSpec) { s.TargetKeyRef.Name = "" }),
			want:   "spec.targetKeyRef.name: Invalid value",
		},
		{
			name:   "Grant with keyRef and keyID",
			reason: "the key must be unambiguous",
			obj:    newGrant(func(s *v1alpha1.GrantSpec) { s.KeyID = "1234abcd-12ab-34cd-56ef-1234567890ab" }),
			want:   "exactly one of spec.keyRef or spec.keyID must be set",
		},
		{
			name:   "Grant with no key",
			reason: "a grant is on a key",
			obj:    newGrant(func(s *v1alpha1.GrantSpec) { s.KeyRef = nil }),
			want:   "exactly one of spec.keyRef or spec.keyID must be set",
		},
		{
			name:   "Grant with empty operations",
			reason: "KMS requires at least one operation",
			obj:    newGrant(func(s *v1alpha1.GrantSpec) { s.Operations = []v1alpha1.GrantOperation{} }),
			want:   "spec.operations: Invalid value: 0",
		},
		{
			name:   "Grant without operations",
			reason: "operations is required",
			obj:    toUnstructured(newGrant(nil), func(m map[string]any) { delete(m["spec"].(map[string]any), "operations") }),
			want:   "spec.operations: Required value",
		},
		{
			name:   "Grant with a bad operation",
			reason: "not a KMS grant operation",
			obj: newGrant(func(s *v1alpha1.GrantSpec) {
				s.Operations = []v1alpha1.GrantOperation{"Decrypt", "ScheduleKeyDeletion"}
			}),
			want: `spec.operations[1]: Unsupported value: "ScheduleKeyDeletion"`,
		},
		{
			name:   "Grant with a duplicate operation",
			reason: "operations is a set",
			obj:    newGrant(func(s *v1alpha1.GrantSpec) { s.Operations = []v1alpha1.GrantOperation{"Decrypt", "Decrypt"} }),
			want:   "spec.operations[1]: Duplicate value",
		},
		{
			name:   "Grant constraints with subset and equals",
			reason: "KMS accepts only one encryption-context constraint",
			obj: newGrant(func(s *v1alpha1.GrantSpec) {
				s.Constraints = &v1alpha1.GrantConstraints{
					EncryptionContextSubset: map[string]string{"a": "b"},
					EncryptionContextEquals: map[string]string{"a": "b"},
				}
			}),
			want: "spec.constraints: set encryptionContextSubset or encryptionContextEquals, not both",
		},
		{
			name:   "Grant without a grantee",
			reason: "a grant gives its permissions to a principal or a service",
			obj:    toUnstructured(newGrant(nil), func(m map[string]any) { delete(m["spec"].(map[string]any), "granteePrincipal") }),
			want:   "exactly one of spec.granteePrincipal (an IAM ARN) or spec.granteeServicePrincipal (an AWS service such as logs.amazonaws.com) must be set",
		},
		{
			name:   "Grant with an empty granteePrincipal",
			reason: "an empty principal grants nobody",
			obj:    toUnstructured(newGrant(nil), func(m map[string]any) { m["spec"].(map[string]any)["granteePrincipal"] = "" }),
			want:   `spec.granteePrincipal: Invalid value: ""`,
		},
		{
			name:   "Grant with a bad name",
			reason: "KMS grant names allow only letters, digits, ':', '/', '_' and '-'",
			obj:    newGrant(func(s *v1alpha1.GrantSpec) { s.Name = "my grant" }),
			want:   `spec.name: Invalid value: "my grant"`,
		},
		{
			name:   "Grant with a bad onDelete",
			reason: "only Revoke and Retire exist",
			obj:    newGrant(func(s *v1alpha1.GrantSpec) { s.OnDelete = "Keep" }),
			want:   `spec.onDelete: Unsupported value: "Keep"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireInvalid(t, k8s.Create(ctx(t), tc.obj), tc.want, tc.reason)
		})
	}
}

func TestKeyUpdate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		reason string
		create func(*v1alpha1.KeySpec)
		update func(*v1alpha1.KeySpec)
		want   string // empty: the update is accepted
	}{
		{
			name:   "keySpec changed",
			reason: "KMS fixes the key spec at creation",
			update: func(s *v1alpha1.KeySpec) { s.KeySpec = "RSA_2048" },
			want:   "spec.keySpec is immutable",
		},
		{
			name:   "explicit keyUsage changed",
			reason: "KMS fixes the key usage at creation",
			create: func(s *v1alpha1.KeySpec) { s.KeySpec = "RSA_2048"; s.KeyUsage = "ENCRYPT_DECRYPT" },
			update: func(s *v1alpha1.KeySpec) { s.KeyUsage = "SIGN_VERIFY" },
			want:   "spec.keyUsage is immutable",
		},
		{
			name:   "unset keyUsage set to a non-default value",
			reason: "the key was created with the default usage (ENCRYPT_DECRYPT for RSA)",
			create: func(s *v1alpha1.KeySpec) { s.KeySpec = "RSA_2048" },
			update: func(s *v1alpha1.KeySpec) { s.KeyUsage = "SIGN_VERIFY" },
			want:   "spec.keyUsage is immutable",
		},
		{
			name:   "explicit non-default keyUsage removed",
			reason: "removing it would mean the default usage, which is not the key's",
			create: func(s *v1alpha1.KeySpec) { s.KeySpec = "RSA_2048"; s.KeyUsage = "SIGN_VERIFY" },
			update: func(s *v1alpha1.KeySpec) { s.KeyUsage = "" },
			want:   "spec.keyUsage is immutable",
		},
		{
			name:   "unset keyUsage set to the default value",
			reason: "writing down the default does not change the key",
			update: func(s *v1alpha1.KeySpec) { s.KeyUsage = "ENCRYPT_DECRYPT" },
		},
		{
			name:   "unset keyUsage set to the default value for ECC",
			reason: "SIGN_VERIFY is the default for ECC keys",
			create: func(s *v1alpha1.KeySpec) { s.KeySpec = "ECC_NIST_P384" },
			update: func(s *v1alpha1.KeySpec) { s.KeyUsage = "SIGN_VERIFY" },
		},
		{
			name:   "explicit default keyUsage removed",
			reason: "the derived usage stays the same",
			create: func(s *v1alpha1.KeySpec) { s.KeySpec = "HMAC_512"; s.KeyUsage = "GENERATE_VERIFY_MAC" },
			update: func(s *v1alpha1.KeySpec) { s.KeyUsage = "" },
		},
		{
			name:   "origin changed",
			reason: "KMS fixes the origin at creation",
			update: func(s *v1alpha1.KeySpec) { s.Origin = v1alpha1.OriginExternal },
			want:   "spec.origin is immutable",
		},
		{
			name:   "multiRegion turned on",
			reason: "KMS fixes multi-Region at creation",
			update: func(s *v1alpha1.KeySpec) { s.MultiRegion = true },
			want:   "spec.multiRegion is immutable",
		},
		{
			name:   "multiRegion turned off",
			reason: "KMS fixes multi-Region at creation",
			create: func(s *v1alpha1.KeySpec) { s.MultiRegion = true },
			update: func(s *v1alpha1.KeySpec) { s.MultiRegion = false },
			want:   "spec.multiRegion is immutable",
		},
		{
			name:   "region changed",
			reason: "a key cannot move between regions",
			create: func(s *v1alpha1.KeySpec) { s.Region = "eu-west-1" },
			update: func(s *v1alpha1.KeySpec) { s.Region = "us-east-1" },
			want:   "spec.region is immutable",
		},
		{
			name:   "region added",
			reason: "the key lives in the operator's default region",
			update: func(s *v1alpha1.KeySpec) { s.Region = "us-east-1" },
			want:   "spec.region is immutable",
		},
		{
			name:   "region removed",
			reason: "the operator's default region may be another one",
			create: func(s *v1alpha1.KeySpec) { s.Region = "eu-west-1" },
			update: func(s *v1alpha1.KeySpec) { s.Region = "" },
			want:   "spec.region is immutable",
		},
		{
			name:   "keyID changed",
			reason: "the object cannot switch to another key",
			create: func(s *v1alpha1.KeySpec) { s.KeyID = "1234abcd-12ab-34cd-56ef-1234567890ab" },
			update: func(s *v1alpha1.KeySpec) { s.KeyID = "0987dcba-09fe-87dc-65ba-ab0987654321" },
			want:   "spec.keyID is immutable once set",
		},
		{
			name:   "keyID removed",
			reason: "the object cannot let go of its key",
			create: func(s *v1alpha1.KeySpec) { s.KeyID = "1234abcd-12ab-34cd-56ef-1234567890ab" },
			update: func(s *v1alpha1.KeySpec) { s.KeyID = "" },
			want:   "spec.keyID is immutable once set",
		},
		{
			name:   "keyID set from unset",
			reason: "adopting an existing key after creation is allowed",
			update: func(s *v1alpha1.KeySpec) { s.KeyID = "1234abcd-12ab-34cd-56ef-1234567890ab" },
		},
		{
			name:   "Observe switched to Manage",
			reason: "managementPolicy is mutable while keyID stays",
			create: func(s *v1alpha1.KeySpec) {
				s.ManagementPolicy = v1alpha1.ManagementPolicyObserve
				s.KeyID = "1234abcd-12ab-34cd-56ef-1234567890ab"
			},
			update: func(s *v1alpha1.KeySpec) { s.ManagementPolicy = v1alpha1.ManagementPolicyManage },
		},
		{
			name:   "description, enabled, tags and policy changed",
			reason: "KMS updates these in place",
			create: func(s *v1alpha1.KeySpec) { s.Description = "a"; s.Tags = map[string]string{"a": "1"} },
			update: func(s *v1alpha1.KeySpec) {
				s.Description = "b"
				s.Enabled = ptr.To(false)
				s.Tags = map[string]string{"b": "2"}
				s.Policy = `{"Version":"2012-10-17","Statement":[]}`
				s.BypassPolicyLockoutSafetyCheck = true
				s.DeletionPolicy = v1alpha1.DeletionPolicyRetain
				s.PendingWindowInDays = 7
			},
		},
		{
			name:   "rotation turned on and its period changed",
			reason: "KMS updates rotation in place",
			update: func(s *v1alpha1.KeySpec) {
				s.Rotation = &v1alpha1.KeyRotation{Enabled: true, PeriodInDays: 90, OnDemandRequest: "1"}
			},
		},
		{
			name:   "rotation turned off",
			reason: "KMS updates rotation in place",
			create: func(s *v1alpha1.KeySpec) { s.Rotation = &v1alpha1.KeyRotation{Enabled: true} },
			update: func(s *v1alpha1.KeySpec) { s.Rotation = nil },
		},
		{
			name:   "rotation turned on after creation on an RSA key",
			reason: "the create-time rules also hold on update",
			create: func(s *v1alpha1.KeySpec) { s.KeySpec = "RSA_2048" },
			update: func(s *v1alpha1.KeySpec) { s.Rotation = &v1alpha1.KeyRotation{Enabled: true} },
			want:   "spec.rotation.enabled: automatic rotation is only for keySpec SYMMETRIC_DEFAULT",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKey(tc.create)
			if err := k8s.Create(ctx(t), k); err != nil {
				t.Fatalf("create: %v", err)
			}
			tc.update(&k.Spec)
			err := k8s.Update(ctx(t), k)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("update rejected (%s): %v", tc.reason, err)
				}
				return
			}
			requireInvalid(t, err, tc.want, tc.reason)
		})
	}
}

func TestAliasAndGrantUpdate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		reason string
		obj    client.Object
		update func(client.Object)
		want   string
	}{
		{
			name:   "alias name changed",
			reason: "renaming would orphan the KMS alias; create a new Alias instead",
			obj:    newAlias(nil),
			update: func(o client.Object) { o.(*v1alpha1.Alias).Spec.Name = "alias/renamed" },
			want:   "spec.name is immutable",
		},
		{
			name:   "alias retargeted to another Key",
			reason: "UpdateAlias moves an alias between keys",
			obj:    newAlias(nil),
			update: func(o client.Object) { o.(*v1alpha1.Alias).Spec.TargetKeyRef.Name = "other-key" },
		},
		{
			name:   "alias switched from targetKeyRef to targetKeyID",
			reason: "UpdateAlias moves an alias between keys",
			obj:    newAlias(nil),
			update: func(o client.Object) {
				s := &o.(*v1alpha1.Alias).Spec
				s.TargetKeyRef = nil
				s.TargetKeyID = "1234abcd-12ab-34cd-56ef-1234567890ab"
			},
		},
		{
			name:   "alias given both targets on update",
			reason: "the create-time rules also hold on update",
			obj:    newAlias(nil),
			update: func(o client.Object) { o.(*v1alpha1.Alias).Spec.TargetKeyID = "1234abcd-12ab-34cd-56ef-1234567890ab" },
			want:   "exactly one of spec.targetKeyRef or spec.targetKeyID must be set",
		},
		{
			name:   "grant operations and constraints changed",
			reason: "a changed grant is replaced by the operator",
			obj:    newGrant(nil),
			update: func(o client.Object) {
				s := &o.(*v1alpha1.Grant).Spec
				s.Operations = []v1alpha1.GrantOperation{"Encrypt"}
				s.Constraints = &v1alpha1.GrantConstraints{EncryptionContextEquals: map[string]string{"a": "b"}}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := k8s.Create(ctx(t), tc.obj); err != nil {
				t.Fatalf("create: %v", err)
			}
			tc.update(tc.obj)
			err := k8s.Update(ctx(t), tc.obj)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("update rejected (%s): %v", tc.reason, err)
				}
				return
			}
			requireInvalid(t, err, tc.want, tc.reason)
		})
	}
}

func TestCRDPresentation(t *testing.T) {
	for _, tc := range []struct {
		crd       string
		shortName string
	}{
		{"keys.kms.kmsoperator.io", "kmskey"},
		{"aliases.kms.kmsoperator.io", "kmsalias"},
		{"grants.kms.kmsoperator.io", "kmsgrant"},
		{"replicakeys.kms.kmsoperator.io", "kmsreplica"},
	} {
		t.Run(tc.crd, func(t *testing.T) {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := k8s.Get(ctx(t), client.ObjectKey{Name: tc.crd}, crd); err != nil {
				t.Fatalf("get CRD: %v", err)
			}
			if crd.Spec.Scope != apiextensionsv1.NamespaceScoped {
				t.Errorf("scope = %s, want Namespaced", crd.Spec.Scope)
			}
			if got := crd.Spec.Names.ShortNames; !reflect.DeepEqual(got, []string{tc.shortName}) {
				t.Errorf("shortNames = %v, want [%s]", got, tc.shortName)
			}
			if got := crd.Spec.Names.Categories; !reflect.DeepEqual(got, []string{"kms"}) {
				t.Errorf("categories = %v, want [kms]", got)
			}
			if len(crd.Spec.Versions) != 1 || crd.Spec.Versions[0].Name != "v1alpha1" {
				t.Fatalf("versions: want exactly v1alpha1, got %d", len(crd.Spec.Versions))
			}
			v := crd.Spec.Versions[0]
			if v.Subresources == nil || v.Subresources.Status == nil {
				t.Error("status subresource missing")
			}
			var ready *apiextensionsv1.CustomResourceColumnDefinition
			for i, c := range v.AdditionalPrinterColumns {
				if c.Name == "Ready" {
					ready = &v.AdditionalPrinterColumns[i]
				}
			}
			if ready == nil {
				t.Errorf("no Ready printer column in %+v", v.AdditionalPrinterColumns)
			} else if ready.JSONPath != `.status.conditions[?(@.type=="Ready")].status` || ready.Priority != 0 {
				t.Errorf("Ready column = %+v, want the Ready condition's status at priority 0", *ready)
			}

			if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
				t.Fatal("no schema")
			}
			var missing []string
			walkDescriptions(*v.Schema.OpenAPIV3Schema, "", &missing)
			sort.Strings(missing)
			if len(missing) > 0 {
				t.Errorf("fields without a description (kubectl explain shows nothing for them):\n  %s", strings.Join(missing, "\n  "))
			}
		})
	}
}

// walkDescriptions appends the path of every property below s that has no
// description. The standard object fields at the root are left out.
func walkDescriptions(s apiextensionsv1.JSONSchemaProps, path string, missing *[]string) {
	for name, p := range s.Properties {
		if path == "" && (name == "metadata" || name == "apiVersion" || name == "kind") {
			continue
		}
		child := name
		if path != "" {
			child = path + "." + name
		}
		if strings.TrimSpace(p.Description) == "" {
			*missing = append(*missing, child)
		}
		walkDescriptions(p, child, missing)
	}
	if s.Items != nil && s.Items.Schema != nil {
		walkDescriptions(*s.Items.Schema, path+"[]", missing)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		walkDescriptions(*s.AdditionalProperties.Schema, path+"{}", missing)
	}
}
