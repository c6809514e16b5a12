package kmscontract

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"testing"

	"github.com/kmsoperator/kms-operator/internal/keymaterial"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// importAs wraps material for keyID with fresh import parameters and imports
// it; it returns the key material id and the import's error.
func importAs(t *testing.T, api kmsclient.API, keyID, keySpec string, material []byte, in kmsclient.ImportKeyMaterialInput) (string, error) {
	t.Helper()
	algorithm := keymaterial.WrappingAlgorithm(keySpec)
	params, err := api.GetParametersForImport(ctx, keyID, algorithm, keymaterial.WrappingKeySpec)
	if err != nil {
		t.Fatalf("GetParametersForImport: %v", err)
	}
	wrapped, err := keymaterial.Wrap(algorithm, params.PublicKey, material)
	if err != nil {
		t.Fatal(err)
	}
	in.KeyID, in.ImportToken, in.EncryptedKeyMaterial = keyID, params.ImportToken, wrapped
	return api.ImportKeyMaterial(ctx, in)
}

func random(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func importSymmetric() Case {
	return Case{
		Reason: "Symmetric material gets an id; the same material re-imports by id, other material does not; new material waits PENDING_ROTATION until RotateKeyOnDemand makes it current, the old staying NON_CURRENT; a deleted current material leaves the key PendingImport until it is imported again.",
		Run: func(t *testing.T, api kmsclient.API) any {
			k := create(t, api, kmsclient.CreateKeyInput{Origin: "EXTERNAL"})
			first, second := random(32), random(32)
			id1, err := importAs(t, api, k.ID, "SYMMETRIC_DEFAULT", first, kmsclient.ImportKeyMaterialInput{})
			if err != nil {
				t.Fatal(err)
			}
			enabled, _ := api.DescribeKey(ctx, k.ID)
			_, errSame := importAs(t, api, k.ID, "SYMMETRIC_DEFAULT", first, kmsclient.ImportKeyMaterialInput{ImportType: kmsclient.ImportExistingMaterial, KeyMaterialID: id1})
			_, errOther := importAs(t, api, k.ID, "SYMMETRIC_DEFAULT", second, kmsclient.ImportKeyMaterialInput{ImportType: kmsclient.ImportExistingMaterial, KeyMaterialID: id1})
			errRotateEarly := api.RotateOnDemand(ctx, k.ID)
			id2, errNew := importAs(t, api, k.ID, "SYMMETRIC_DEFAULT", second, kmsclient.ImportKeyMaterialInput{ImportType: kmsclient.ImportNewMaterial})
			pending, _ := api.ListKeyMaterials(ctx, k.ID)
			errRotate := api.RotateOnDemand(ctx, k.ID)
			rotated, _ := api.DescribeKey(ctx, k.ID)
			after, _ := api.ListKeyMaterials(ctx, k.ID)
			errDelete := api.DeleteImportedKeyMaterial(ctx, k.ID, "")
			deleted, _ := api.DescribeKey(ctx, k.ID)
			_, errBack := importAs(t, api, k.ID, "SYMMETRIC_DEFAULT", second, kmsclient.ImportKeyMaterialInput{ImportType: kmsclient.ImportExistingMaterial, KeyMaterialID: id2})
			back, _ := api.DescribeKey(ctx, k.ID)
			states := func(ms []kmsclient.KeyMaterial) []string {
				var s []string
				for _, m := range ms {
					s = append(s, m.State+"/"+m.ImportState)
				}
				return s
			}
			return []any{enabled.State, enabled.CurrentKeyMaterialID == id1, class(errSame), class(errOther), kmsclient.IsIncorrectKeyMaterial(errOther),
				class(errRotateEarly), class(errNew), id2 != id1, states(pending), class(errRotate), rotated.CurrentKeyMaterialID == id2, states(after),
				class(errDelete), deleted.State, class(errBack), back.State}
		},
		Want: []any{"Enabled", true, "", "Invalid", true,
			"InvalidState", "", true, []string{"CURRENT/IMPORTED", "PENDING_ROTATION/IMPORTED"}, "", true, []string{"NON_CURRENT/IMPORTED", "CURRENT/IMPORTED"},
			"", "PendingImport", "", "Enabled"},
	}
}

func importAsymmetric() Case {
	return Case{
		Reason: "HMAC and asymmetric keys take their material once (RSA private keys with RSA-AES key wrap): the same again is accepted, other material is incorrect; material that was not wrapped with the import parameters is refused.",
		Run: func(t *testing.T, api kmsclient.API) any {
			hmacKey := create(t, api, kmsclient.CreateKeyInput{Origin: "EXTERNAL", KeySpec: "HMAC_256", KeyUsage: "GENERATE_VERIFY_MAC"})
			hmacMaterial := random(32)
			_, errHMAC := importAs(t, api, hmacKey.ID, "HMAC_256", hmacMaterial, kmsclient.ImportKeyMaterialInput{})
			_, errHMACAgain := importAs(t, api, hmacKey.ID, "HMAC_256", hmacMaterial, kmsclient.ImportKeyMaterialInput{})
			_, errHMACOther := importAs(t, api, hmacKey.ID, "HMAC_256", random(32), kmsclient.ImportKeyMaterialInput{})
			hmacDescribed, _ := api.DescribeKey(ctx, hmacKey.ID)

			rsaKey := create(t, api, kmsclient.CreateKeyInput{Origin: "EXTERNAL", KeySpec: "RSA_2048", KeyUsage: "SIGN_VERIFY"})
			priv, _ := rsa.GenerateKey(rand.Reader, 2048)
			der, _ := x509.MarshalPKCS8PrivateKey(priv)
			_, errRSA := importAs(t, api, rsaKey.ID, "RSA_2048", der, kmsclient.ImportKeyMaterialInput{})
			rsaDescribed, _ := api.DescribeKey(ctx, rsaKey.ID)

			ecKey := create(t, api, kmsclient.CreateKeyInput{Origin: "EXTERNAL", KeySpec: "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY"})
			ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			ecDER, _ := x509.MarshalPKCS8PrivateKey(ecPriv)
			_, errEC := importAs(t, api, ecKey.ID, "ECC_NIST_P256", ecDER, kmsclient.ImportKeyMaterialInput{})
			ecDescribed, _ := api.DescribeKey(ctx, ecKey.ID)

			sym := create(t, api, kmsclient.CreateKeyInput{Origin: "EXTERNAL"})
			params, err := api.GetParametersForImport(ctx, sym.ID, keymaterial.RSAESOAEPSHA256, keymaterial.WrappingKeySpec)
			if err != nil {
				t.Fatal(err)
			}
			_, errGarbage := api.ImportKeyMaterial(ctx, kmsclient.ImportKeyMaterialInput{KeyID: sym.ID, ImportToken: params.ImportToken, EncryptedKeyMaterial: random(512)})
			_, errParams := api.GetParametersForImport(ctx, create(t, api, kmsclient.CreateKeyInput{}).ID, keymaterial.RSAESOAEPSHA256, keymaterial.WrappingKeySpec)
			return []any{hmacKey.State, class(errHMAC), class(errHMACAgain), kmsclient.IsIncorrectKeyMaterial(errHMACOther), hmacDescribed.State, hmacDescribed.CurrentKeyMaterialID,
				class(errRSA), rsaDescribed.State, class(errEC), ecDescribed.State, class(errGarbage), class(errParams)}
		},
		Want: []any{"PendingImport", "", "", true, "Enabled", "", "", "Enabled", "", "Enabled", "Invalid", "Invalid"},
	}
}
