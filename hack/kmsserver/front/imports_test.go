package front

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// wrapWithPadding is RFC 5649's AES key wrap with padding, for material of
// a multiple of 8 bytes.
func wrapWithPadding(kek, material []byte) []byte {
	block, _ := aes.NewCipher(kek)
	a := []byte{0xa6, 0x59, 0x59, 0xa6, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(a[4:], uint32(len(material)))
	r := bytes.Clone(material)
	n := len(r) / 8
	buf := make([]byte, 16)
	for j := range 6 {
		for i := 1; i <= n; i++ {
			copy(buf, a)
			copy(buf[8:], r[(i-1)*8:i*8])
			block.Encrypt(buf, buf)
			binary.BigEndian.PutUint64(a, binary.BigEndian.Uint64(buf[:8])^uint64(n*j+i))
			copy(r[(i-1)*8:i*8], buf[8:])
		}
	}
	return append(a, r...)
}

// importMaterial wraps material with fresh import parameters and imports it.
func importMaterial(t *testing.T, c *kms.Client, keyID, algorithm string, material []byte, in kms.ImportKeyMaterialInput) (*kms.ImportKeyMaterialOutput, error) {
	t.Helper()
	ctx := context.Background()
	params := must(c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: &keyID,
		WrappingAlgorithm: types.AlgorithmSpec(algorithm), WrappingKeySpec: types.WrappingKeySpecRsa2048}))(t)
	pub := must(x509.ParsePKIXPublicKey(params.PublicKey))(t).(*rsa.PublicKey)
	var wrapped []byte
	switch algorithm {
	case "RSAES_OAEP_SHA_256":
		wrapped = must(rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, material, nil))(t)
	case "RSA_AES_KEY_WRAP_SHA_256":
		kek := make([]byte, 32)
		_, _ = rand.Read(kek)
		wrapped = append(must(rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, kek, nil))(t), wrapWithPadding(kek, material)...)
	}
	in.KeyId, in.ImportToken, in.EncryptedKeyMaterial = &keyID, params.ImportToken, wrapped
	if in.ExpirationModel == "" {
		in.ExpirationModel = types.ExpirationModelTypeKeyMaterialDoesNotExpire
	}
	return c.ImportKeyMaterial(ctx, &in)
}

func newMaterial() []byte {
	m := make([]byte, 32)
	_, _ = rand.Read(m)
	return m
}

func TestImportKeyMaterial(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s := startWith(t, Options{}, clock)
	c := s.client
	key := createKey(t, c, &kms.CreateKeyInput{Origin: types.OriginTypeExternal})
	id := *key.KeyId
	if key.KeyState != types.KeyStatePendingImport {
		t.Fatalf("new EXTERNAL key %s", key.KeyState)
	}

	first, second := newMaterial(), newMaterial()
	imported := must(importMaterial(t, c, id, "RSAES_OAEP_SHA_256", first, kms.ImportKeyMaterialInput{KeyMaterialDescription: aws.String("first")}))(t)
	if len(*imported.KeyMaterialId) != 64 {
		t.Errorf("KeyMaterialId %s, want 64 hex digits", *imported.KeyMaterialId)
	}
	md := describe(t, c, id)
	if md.KeyState != types.KeyStateEnabled || *md.CurrentKeyMaterialId != *imported.KeyMaterialId ||
		md.ExpirationModel != types.ExpirationModelTypeKeyMaterialDoesNotExpire {
		t.Errorf("after the first import: %s, material %v, %s", md.KeyState, md.CurrentKeyMaterialId, md.ExpirationModel)
	}
	oldCiphertext := must(c.Encrypt(ctx, &kms.EncryptInput{KeyId: &id, Plaintext: []byte("old")}))(t).CiphertextBlob

	if _, err := c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: &id}); errCode(err) != "KMSInvalidStateException" {
		t.Errorf("RotateKeyOnDemand without new material: %v", err)
	}
	next := must(importMaterial(t, c, id, "RSA_AES_KEY_WRAP_SHA_256", second, kms.ImportKeyMaterialInput{ImportType: types.ImportTypeNewKeyMaterial}))(t)
	all := must(c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: &id, IncludeKeyMaterial: types.IncludeKeyMaterialAllKeyMaterial}))(t).Rotations
	if len(all) != 2 || all[1].KeyMaterialState != types.KeyMaterialStatePendingRotation || all[1].ImportState != types.ImportStateImported ||
		*all[0].KeyMaterialDescription != "first" || all[0].KeyMaterialState != types.KeyMaterialStateCurrent {
		t.Errorf("materials before rotation: %+v", all)
	}
	if r := must(c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: &id}))(t).Rotations; len(r) != 0 {
		t.Errorf("rotations before rotating: %+v", r)
	}

	clock.Advance(time.Minute)
	must(c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: &id}))(t)
	rotations := must(c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: &id}))(t).Rotations
	if len(rotations) != 1 || *rotations[0].KeyMaterialId != *next.KeyMaterialId || rotations[0].KeyMaterialState != types.KeyMaterialStateCurrent ||
		rotations[0].RotationType != types.RotationTypeOnDemand || !rotations[0].RotationDate.Equal(clock.Now()) {
		t.Errorf("rotations %+v", rotations)
	}
	if md := describe(t, c, id); *md.CurrentKeyMaterialId != *next.KeyMaterialId {
		t.Errorf("current material %s, want the new one", *md.CurrentKeyMaterialId)
	}
	newCiphertext := must(c.Encrypt(ctx, &kms.EncryptInput{KeyId: &id, Plaintext: []byte("new")}))(t).CiphertextBlob
	for want, blob := range map[string][]byte{"old": oldCiphertext, "new": newCiphertext} {
		if got := must(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob}))(t).Plaintext; string(got) != want {
			t.Errorf("decrypted %q, want %q", got, want)
		}
	}

	t.Run("delete and re-import", func(t *testing.T) {
		must(c.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: &id, KeyMaterialId: imported.KeyMaterialId}))(t)
		if md := describe(t, c, id); md.KeyState != types.KeyStatePendingImport {
			t.Errorf("after deleting old material: %s, want PendingImport", md.KeyState)
		}
		if _, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: newCiphertext}); errCode(err) != "KMSInvalidStateException" {
			t.Errorf("Decrypt without all material: %v", err)
		}
		if _, err := importMaterial(t, c, id, "RSAES_OAEP_SHA_256", newMaterial(), kms.ImportKeyMaterialInput{}); errCode(err) != "IncorrectKeyMaterialException" {
			t.Errorf("re-import of other bytes: %v", err)
		}
		must(importMaterial(t, c, id, "RSAES_OAEP_SHA_256", first, kms.ImportKeyMaterialInput{KeyMaterialId: imported.KeyMaterialId}))(t)
		if got := must(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: oldCiphertext}))(t).Plaintext; string(got) != "old" {
			t.Errorf("decrypted %q after re-import", got)
		}
	})

	t.Run("material expires", func(t *testing.T) {
		validTo := clock.Now().Add(48 * time.Hour)
		must(importMaterial(t, c, id, "RSAES_OAEP_SHA_256", second, kms.ImportKeyMaterialInput{
			ExpirationModel: types.ExpirationModelTypeKeyMaterialExpires, ValidTo: &validTo}))(t)
		if md := describe(t, c, id); md.ValidTo == nil || !md.ValidTo.Equal(validTo) || md.ExpirationModel != types.ExpirationModelTypeKeyMaterialExpires {
			t.Errorf("ValidTo %v %s", md.ValidTo, md.ExpirationModel)
		}
		clock.Advance(48 * time.Hour)
		if md := describe(t, c, id); md.KeyState != types.KeyStatePendingImport {
			t.Errorf("after ValidTo: %s, want PendingImport", md.KeyState)
		}
	})

	errs := []struct {
		name     string
		call     func() error
		wantCode string
	}{
		{"an AWS_KMS key", func() error {
			_, err := c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: createKey(t, c, nil).KeyId,
				WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
			return err
		}, "UnsupportedOperationException"},
		{"PKCS #1 v1.5", func() error {
			_, err := c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: &id,
				WrappingAlgorithm: types.AlgorithmSpecRsaesPkcs1V15, WrappingKeySpec: types.WrappingKeySpecRsa2048})
			return err
		}, "ValidationException"},
		{"an expired import token", func() error {
			other := createKey(t, c, &kms.CreateKeyInput{Origin: types.OriginTypeExternal}).KeyId
			params := must(c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: other,
				WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa3072}))(t)
			if !params.ParametersValidTo.Equal(clock.Now().Add(24 * time.Hour)) {
				t.Errorf("ParametersValidTo %v, want in 24h", params.ParametersValidTo)
			}
			clock.Advance(24 * time.Hour)
			_, err := c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: other, ImportToken: params.ImportToken,
				EncryptedKeyMaterial: []byte("x"), ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire})
			return err
		}, "ExpiredImportTokenException"},
		{"rotating an AWS_KMS key with a pending import type is unaffected", func() error {
			_, err := c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: createKey(t, c, nil).KeyId})
			return err
		}, ""},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); errCode(err) != tt.wantCode {
				t.Errorf("err %v, want %q", err, tt.wantCode)
			}
		})
	}
}
