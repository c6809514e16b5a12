package kmsfake

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"slices"
	"sync"
	"time"

	"github.com/kmsoperator/kms-operator/internal/keymaterial"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// Imported key material as KMS has it since 2025, as the KMS server models it
// (hack/kmsserver/front/imports.go): import parameters valid 24 hours, key
// material ids for symmetric keys, re-import of the same material, new
// material pending rotation and RotateKeyOnDemand to it, deletion of one
// material, and expiry by the fake's clock.

// imports is an EXTERNAL key's material.
type imports struct {
	params    *importParams
	materials []*material
}

type importParams struct {
	algorithm string
	priv      *rsa.PrivateKey
	token     []byte
	validTo   time.Time
}

type material struct {
	id       string
	state    string // CURRENT, NON_CURRENT, PENDING_ROTATION
	imported bool
	validTo  *time.Time
	rotated  *time.Time
	bytes    []byte
}

// wrappingKeys are generated once per size and process: a 4096-bit RSA key
// takes seconds, and tests need not pay that per key.
var wrappingKeys struct {
	sync.Mutex
	bySize map[int]*rsa.PrivateKey
}

func wrappingKey(bits int) (*rsa.PrivateKey, error) {
	wrappingKeys.Lock()
	defer wrappingKeys.Unlock()
	if k := wrappingKeys.bySize[bits]; k != nil {
		return k, nil
	}
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, err
	}
	if wrappingKeys.bySize == nil {
		wrappingKeys.bySize = map[int]*rsa.PrivateKey{}
	}
	wrappingKeys.bySize[bits] = k
	return k, nil
}

// materialID is derived from the key id and the material, as KMS's is.
func materialID(keyID string, m []byte) string {
	sum := sha256.Sum256(append([]byte(keyID), m...))
	return hex.EncodeToString(sum[:])
}

// describe adds the current material to a key's metadata.
func (im *imports) describe(key *kmsclient.Key) {
	for _, m := range im.materials {
		if m.state == kmsclient.MaterialCurrent {
			if key.KeySpec == "SYMMETRIC_DEFAULT" {
				key.CurrentKeyMaterialID = m.id
			}
			key.ExpirationModel, key.ValidTo = "KEY_MATERIAL_DOES_NOT_EXPIRE", nil
			if m.validTo != nil {
				v := *m.validTo
				key.ExpirationModel, key.ValidTo = "KEY_MATERIAL_EXPIRES", &v
			}
		}
	}
}

// expire deletes imported material whose ValidTo has passed: "when imported
// key material with an expiration date expires, AWS KMS deletes the key
// material".
func (k *fakeKey) expire(now time.Time) {
	expired := false
	for _, m := range k.imports.materials {
		if m.imported && m.validTo != nil && !now.Before(*m.validTo) {
			m.imported, expired = false, true
		}
	}
	if expired {
		k.imports.materials = slices.DeleteFunc(k.imports.materials, func(m *material) bool {
			return m.state == kmsclient.MaterialPendingRotation && !m.imported
		})
		k.settleImportState()
	}
}

// settleImportState makes the key PendingImport while a material permanently
// associated with it is not imported, and Enabled once every one is.
func (k *fakeKey) settleImportState() {
	if kmsclient.PendingDeletion(k.State) {
		return
	}
	complete := len(k.imports.materials) > 0
	for _, m := range k.imports.materials {
		if m.state != kmsclient.MaterialPendingRotation && !m.imported {
			complete = false
		}
	}
	switch {
	case !complete:
		k.State = kmsclient.StatePendingImport
	case k.State == kmsclient.StatePendingImport:
		k.State = kmsclient.StateEnabled
	}
}

func external(op string, k *fakeKey) error {
	if k.Origin != "EXTERNAL" {
		return kmsError(op, "UnsupportedOperationException", k.ARN+" origin is "+k.Origin+" which is not valid for this operation.")
	}
	return nil
}

var wrappingKeyBits = map[string]int{"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}

func (f *Fake) GetParametersForImport(_ context.Context, keyID, algorithm, keySpec string) (*kmsclient.ImportParameters, error) {
	const op = "GetParametersForImport"
	var out *kmsclient.ImportParameters
	err := f.withKey(op, keyID, func(k *fakeKey) error {
		bits, ok := wrappingKeyBits[keySpec]
		if !ok || (algorithm != keymaterial.RSAESOAEPSHA256 && algorithm != keymaterial.RSAAESKeyWrapSHA256) {
			return kmsError(op, "ValidationException", "unsupported wrapping algorithm or wrapping key spec")
		}
		if err := external(op, k); err != nil {
			return err
		}
		priv, err := wrappingKey(bits)
		if err != nil {
			return err
		}
		token := make([]byte, 64)
		_, _ = rand.Read(token)
		k.imports.params = &importParams{algorithm: algorithm, priv: priv, token: token, validTo: f.Now().Add(24 * time.Hour)}
		pub, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
		out = &kmsclient.ImportParameters{PublicKey: pub, ImportToken: token, ValidTo: k.imports.params.validTo}
		return nil
	})
	return out, err
}

// ImportKeyMaterial unwraps the material with the key's import parameters
// and imports it as KMS does: see importSymmetric and importOnce.
func (f *Fake) ImportKeyMaterial(_ context.Context, in kmsclient.ImportKeyMaterialInput) (string, error) {
	const op = "ImportKeyMaterial"
	var id string
	err := f.withKey(op, in.KeyID, func(k *fakeKey) error {
		if err := external(op, k); err != nil {
			return err
		}
		p := k.imports.params
		switch {
		case p == nil || !bytes.Equal(p.token, in.ImportToken):
			return kmsError(op, "InvalidImportTokenException", "Invalid import token")
		case !f.Now().Before(p.validTo):
			return kmsError(op, "ExpiredImportTokenException", "The import token has expired")
		case in.ValidTo != nil && (!in.ValidTo.After(f.Now()) || in.ValidTo.After(f.Now().AddDate(0, 0, 365))):
			return kmsError(op, "ValidationException", "ValidTo must be in the future and at most 365 days from now")
		}
		m, err := keymaterial.Unwrap(p.algorithm, p.priv, in.EncryptedKeyMaterial)
		if err != nil {
			return kmsError(op, "InvalidCiphertextException", "")
		}
		if k.KeySpec != "SYMMETRIC_DEFAULT" {
			return k.importOnce(op, m, in)
		}
		id, err = k.importSymmetric(op, m, in)
		return err
	})
	return id, err
}

// importSymmetric: NEW_KEY_MATERIAL adds the key's first material, or one
// pending rotation; EXISTING_KEY_MATERIAL re-imports material the key has
// (its id must match). The default is NEW_KEY_MATERIAL until the first
// import.
func (k *fakeKey) importSymmetric(op string, m []byte, in kmsclient.ImportKeyMaterialInput) (string, error) {
	if len(m) != 32 {
		return "", kmsError(op, "IncorrectKeyMaterialException", "Symmetric key material must be 256 bits")
	}
	id := materialID(k.ID, m)
	typ := in.ImportType
	if typ == "" {
		typ = kmsclient.ImportExistingMaterial
		if len(k.imports.materials) == 0 {
			typ = kmsclient.ImportNewMaterial
		}
	}
	i := slices.IndexFunc(k.imports.materials, func(x *material) bool { return x.id == id })
	switch typ {
	case kmsclient.ImportExistingMaterial:
		if i < 0 || (in.KeyMaterialID != "" && in.KeyMaterialID != id) {
			return "", kmsError(op, "IncorrectKeyMaterialException", "The key material does not match the key material previously imported into this KMS key")
		}
		k.imports.materials[i].imported, k.imports.materials[i].validTo = true, in.ValidTo
	case kmsclient.ImportNewMaterial:
		switch {
		case in.KeyMaterialID != "":
			return "", kmsError(op, "ValidationException", "You cannot specify a KeyMaterialId with ImportType NEW_KEY_MATERIAL")
		case i >= 0:
			return "", kmsError(op, "IncorrectKeyMaterialException", "This key material is already associated with the KMS key")
		case slices.ContainsFunc(k.imports.materials, func(x *material) bool { return x.state == kmsclient.MaterialPendingRotation }):
			return "", kmsError(op, "KMSInvalidStateException", k.ARN+" already has key material pending rotation; delete it or rotate first")
		}
		state := kmsclient.MaterialCurrent
		if len(k.imports.materials) > 0 {
			state = kmsclient.MaterialPendingRotation
		}
		k.imports.materials = append(k.imports.materials, &material{id: id, state: state, imported: true, validTo: in.ValidTo, bytes: slices.Clone(m)})
	default:
		return "", kmsError(op, "ValidationException", "ImportType must be NEW_KEY_MATERIAL or EXISTING_KEY_MATERIAL")
	}
	k.settleImportState()
	return id, nil
}

// importOnce imports the one material of an HMAC or asymmetric key: "you
// cannot change the key material after the initial import", so a re-import
// must be the same bytes.
func (k *fakeKey) importOnce(op string, m []byte, in kmsclient.ImportKeyMaterialInput) error {
	if in.ImportType != "" || in.KeyMaterialID != "" {
		return kmsError(op, "ValidationException", "ImportType and KeyMaterialId are only for symmetric encryption keys")
	}
	if len(k.imports.materials) == 0 {
		k.imports.materials = []*material{{id: materialID(k.ID, m), state: kmsclient.MaterialCurrent, bytes: slices.Clone(m)}}
	}
	cur := k.imports.materials[0]
	if !bytes.Equal(cur.bytes, m) {
		return kmsError(op, "IncorrectKeyMaterialException", "The key material does not match the key material previously imported into this KMS key")
	}
	cur.imported, cur.validTo = true, in.ValidTo
	k.settleImportState()
	return nil
}

func (f *Fake) DeleteImportedKeyMaterial(_ context.Context, keyID, materialID string) error {
	const op = "DeleteImportedKeyMaterial"
	return f.withKey(op, keyID, func(k *fakeKey) error {
		if err := external(op, k); err != nil {
			return err
		}
		i := slices.IndexFunc(k.imports.materials, func(m *material) bool {
			return m.id == materialID || (materialID == "" && m.state == kmsclient.MaterialCurrent)
		})
		if i < 0 {
			return kmsError(op, "NotFoundException", "Key material "+materialID+" does not exist for "+k.ARN)
		}
		if k.imports.materials[i].state == kmsclient.MaterialPendingRotation {
			k.imports.materials = slices.Delete(k.imports.materials, i, i+1)
		} else {
			k.imports.materials[i].imported = false
		}
		k.settleImportState()
		return nil
	})
}

func (f *Fake) ListKeyMaterials(_ context.Context, keyID string) ([]kmsclient.KeyMaterial, error) {
	const op = "ListKeyRotations"
	var out []kmsclient.KeyMaterial
	err := f.withKey(op, keyID, func(k *fakeKey) error {
		if k.Origin != "EXTERNAL" || k.KeySpec != "SYMMETRIC_DEFAULT" {
			return kmsError(op, "UnsupportedOperationException", k.ARN+" has no key materials to list")
		}
		for _, m := range k.imports.materials {
			km := kmsclient.KeyMaterial{ID: m.id, State: m.state, ImportState: "PENDING_IMPORT", ValidTo: m.validTo, RotationDate: m.rotated}
			if m.imported {
				km.ImportState = kmsclient.MaterialImported
			}
			out = append(out, km)
		}
		return nil
	})
	return out, err
}

// rotateImported rotates an EXTERNAL key to its imported material pending
// rotation; the old material stays, NON_CURRENT, to decrypt.
func (f *Fake) rotateImported(op string, k *fakeKey) error {
	switch k.State {
	case kmsclient.StateDisabled:
		return kmsError(op, "DisabledException", k.ARN+" is disabled.")
	case kmsclient.StatePendingImport:
		return kmsError(op, "KMSInvalidStateException", k.ARN+" is pending import.")
	}
	i := slices.IndexFunc(k.imports.materials, func(m *material) bool {
		return m.state == kmsclient.MaterialPendingRotation && m.imported
	})
	if i < 0 {
		return kmsError(op, "KMSInvalidStateException", k.ARN+" has no imported key material in PENDING_ROTATION state to rotate to")
	}
	for _, m := range k.imports.materials {
		if m.state == kmsclient.MaterialCurrent {
			m.state = kmsclient.MaterialNonCurrent
		}
	}
	now := f.Now()
	k.imports.materials[i].state, k.imports.materials[i].rotated = kmsclient.MaterialCurrent, &now
	return nil
}

// rotations are an EXTERNAL key's completed rotations.
func (im *imports) rotations() []kmsclient.KeyRotation {
	var out []kmsclient.KeyRotation
	for _, m := range im.materials {
		if m.rotated != nil {
			out = append(out, kmsclient.KeyRotation{Date: *m.rotated, Type: "ON_DEMAND"})
		}
	}
	return out
}
