//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// TestImportedKeyMaterial: a Key with origin EXTERNAL takes its material
// from a Secret and is Enabled; new material in the Secret is imported and
// rotated to, and what the old material encrypted still decrypts; material
// deleted behind the operator's back is imported again; and the material is
// in no log, event or status.
func TestImportedKeyMaterial(t *testing.T) {
	explainFailure(t)
	ctx := context.Background()
	first, second := randomBytes(32), randomBytes(32)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: nsMain, Name: "byok-material"}, Data: map[string][]byte{"material": first}}
	create(t, secret)
	key := newKey(nsMain, "byok", func(k *kmsv1alpha1.Key) {
		k.Spec.Origin = kmsv1alpha1.OriginExternal
		k.Spec.KeyMaterial = &kmsv1alpha1.KeyMaterialSource{SecretRef: kmsv1alpha1.SecretKeyReference{Name: secret.Name, Key: "material"}}
	})
	create(t, key)
	waitReady(t, key)
	id := key.Status.KeyID
	api := kmsIn(t, regionOfKey(key))
	if got, err := api.DescribeKey(ctx, id); err != nil || got.State != kmsclient.StateEnabled || got.Origin != "EXTERNAL" {
		t.Fatalf("KMS key %s: %+v, %v; want an Enabled EXTERNAL key", id, got, err)
	}
	firstID := key.Status.KeyMaterial.CurrentKeyMaterialID
	kms := regionalKMS(t, regionOfKey(key))
	awaitWrite(t) // KMS shows a key's new state to cryptographic calls late
	before, err := kms.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("before rotation")})
	if err != nil {
		t.Fatal(err)
	}

	update(t, secret, func(s *corev1.Secret) { s.Data["material"] = second })
	eventually(t, "the key rotated to the Secret's new material", func() (bool, string) {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(key), key); err != nil {
			return false, err.Error()
		}
		m := key.Status.KeyMaterial
		ready := conditionOf(key, kmsv1alpha1.ConditionReady)
		return m != nil && m.CurrentKeyMaterialID != firstID && len(m.Rotations) == 2 && ready != nil && ready.Status == "True",
			fmt.Sprintf("%+v %v", m, ready)
	})
	awaitWrite(t)
	materials, err := api.ListKeyMaterials(ctx, id)
	if err != nil || len(materials) != 2 || materials[0].State != kmsclient.MaterialNonCurrent || materials[1].State != kmsclient.MaterialCurrent {
		t.Errorf("key materials %+v, %v; want the first NON_CURRENT and the new one CURRENT", materials, err)
	}
	dec, err := kms.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: before.CiphertextBlob, KeyId: aws.String(id)})
	if err != nil || string(dec.Plaintext) != "before rotation" {
		t.Errorf("decrypting what the old material encrypted: %v", err)
	}
	if !eventReasons(t, nsMain, "Key", key.Name)["KeyMaterialRotated"] {
		t.Error("no KeyMaterialRotated event")
	}

	// Material deleted behind the operator's back comes back from the Secret.
	awaitWrite(t)
	if err := api.DeleteImportedKeyMaterial(ctx, id, ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deleted material imported again", func() (bool, string) {
		k, err := api.DescribeKey(ctx, id)
		if err != nil {
			return false, err.Error()
		}
		return k.State == kmsclient.StateEnabled && eventReasons(t, nsMain, "Key", key.Name)["DriftCorrected"], k.State
	})
	awaitWrite(t)
	if _, err := kms.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: before.CiphertextBlob, KeyId: aws.String(id)}); err != nil {
		t.Errorf("decrypting after the material came back: %v", err)
	}

	assertNowhere(t, first, second)
}

// assertNowhere fails when any of the materials, in any of the usual
// encodings, is in the operators' logs, the KMS server's log, the events
// of nsMain or the Keys' statuses.
func assertNowhere(t *testing.T, materials ...[]byte) {
	t.Helper()
	var haystack strings.Builder
	logs, _ := filepath.Glob(filepath.Join(os.Getenv("LOCAL_DIR"), "logs", "*.log"))
	for _, f := range logs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		haystack.Write(b)
	}
	for _, e := range namespaceEvents(t, nsMain) {
		haystack.WriteString(e.note)
	}
	var keys kmsv1alpha1.KeyList
	if err := k8s.List(context.Background(), &keys, client.InNamespace(nsMain)); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys.Items {
		fmt.Fprintf(&haystack, "%+v", k.Status)
	}
	if len(logs) == 0 || haystack.Len() < 1000 {
		t.Fatalf("found %d logs and %d bytes to search: too little to prove anything", len(logs), haystack.Len())
	}
	all := haystack.String()
	for i, m := range materials {
		for _, form := range []string{string(m), hex.EncodeToString(m), strings.ToUpper(hex.EncodeToString(m)),
			base64.StdEncoding.EncodeToString(m), base64.RawStdEncoding.EncodeToString(m), base64.URLEncoding.EncodeToString(m)} {
			if strings.Contains(all, form) {
				t.Errorf("key material %d found in the logs, events or status", i)
			}
		}
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
