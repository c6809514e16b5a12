package front

// Imported key material (origin EXTERNAL) as KMS has it since 2025: wrapping
// keys of 2048 to 4096 bits, key material ids, re-import of the same
// material, new material imported for on-demand rotation, expiry, and
// deletion of one material
// (https://docs.aws.amazon.com/kms/latest/developerguide/importing-keys.html,
// API references of GetParametersForImport, ImportKeyMaterial,
// DeleteImportedKeyMaterial, RotateKeyOnDemand and ListKeyRotations).
// HMAC and asymmetric keys (RSA, NIST ECC) take one material, which can be
// re-imported but never changed (importOnce, imports_asymmetric.go); local-kms
// makes EXTERNAL keys of no other key spec than symmetric, so createKey makes
// them (externalKeySpecs).

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"slices"
	"time"

	"github.com/nsmithuk/local-kms/src/cmk"
	"github.com/nsmithuk/local-kms/src/handler"
)

// importParams are the wrapping key and import token of the last
// GetParametersForImport of a key.
type importParams struct {
	Algorithm   string    `json:"algorithm"`
	WrappingKey []byte    `json:"wrappingKey"` // PKCS #8
	Token       []byte    `json:"token"`
	ValidTo     time.Time `json:"validTo"`
}

// Key material states (RotationsListEntry).
const (
	materialCurrent         = "CURRENT"
	materialNonCurrent      = "NON_CURRENT"
	materialPendingRotation = "PENDING_ROTATION"
)

// keyMaterial is one key material of an EXTERNAL key.
type keyMaterial struct {
	ID              string    `json:"id"`
	Description     string    `json:"description,omitempty"`
	State           string    `json:"state"`
	Imported        bool      `json:"imported"`
	ExpirationModel string    `json:"expirationModel"`
	ValidTo         time.Time `json:"validTo,omitzero"`
	RotationDate    time.Time `json:"rotationDate,omitzero"`
	// Pending is the material of a PENDING_ROTATION entry, which local-kms
	// receives at rotation; local-kms holds the others.
	Pending []byte `json:"pending,omitempty"`
}

// materialID identifies key material: KMS derives it "based on the KMS key
// ID and the imported key material" (ImportKeyMaterial API reference), 64
// lowercase hex digits (RotationsListEntry).
func materialID(keyID string, material []byte) string {
	sum := sha256.Sum256(append([]byte(keyID), material...))
	return hex.EncodeToString(sum[:])
}

// wrappingAlgorithms are GetParametersForImport's; RSAES_PKCS1_V1_5 is no
// longer supported ("As of October 10, 2023, KMS does not support the
// RSAES_PKCS1_V1_5 wrapping algorithm") and SM2PKE is for China's regions.
var wrappingAlgorithms = []string{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256"}

var wrappingKeyBits = map[string]int{"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}

// externalKey loads a key that takes imported material.
func (c *call) externalKey(keyID string) (cmk.Key, handler.Response) {
	key, resp := c.t.loadKey(keyID)
	if key == nil {
		return nil, resp
	}
	if key.GetMetadata().Origin != cmk.KeyOriginExternal {
		return nil, errorResponse(400, "UnsupportedOperationException", key.GetArn()+" origin is "+string(key.GetMetadata().Origin)+" which is not valid for this operation.")
	}
	if pendingDeletion(key) {
		return nil, invalidState("%s is pending deletion.", key.GetArn())
	}
	return key, handler.Response{}
}

// getParametersForImport makes a wrapping key pair and an import token valid
// for 24 hours ("the public key and import token ... are valid for 24
// hours", GetParametersForImport API reference).
func (f *Front) getParametersForImport(c *call) handler.Response {
	var in struct {
		KeyId, WrappingAlgorithm, WrappingKeySpec string
	}
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	if !slices.Contains(wrappingAlgorithms, in.WrappingAlgorithm) {
		return validationError("1 validation error detected: Value '%s' at 'wrappingAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: %v", in.WrappingAlgorithm, wrappingAlgorithms)
	}
	bits, ok := wrappingKeyBits[in.WrappingKeySpec]
	if !ok {
		return validationError("1 validation error detected: Value '%s' at 'wrappingKeySpec' failed to satisfy constraint: Member must satisfy enum value set: [RSA_2048, RSA_3072, RSA_4096]", in.WrappingKeySpec)
	}
	key, resp := c.externalKey(in.KeyId)
	if key == nil {
		return resp
	}
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return errorResponse(500, "KMSInternalException", err.Error())
	}
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	pub, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	params := &importParams{Algorithm: in.WrappingAlgorithm, WrappingKey: der,
		Token: []byte(randomString(512, hex.EncodeToString)), ValidTo: c.now.Add(24 * time.Hour)}
	err = c.t.state.update(func(d *storeData) bool {
		d.key(key.GetArn()).Import = params
		return true
	})
	if err != nil {
		return saveFailed(err)
	}
	return jsonResponse(200, map[string]any{"KeyId": key.GetArn(), "ImportToken": params.Token,
		"PublicKey": pub, "ParametersValidTo": params.ValidTo.Unix()})
}

// unwrap decrypts key material wrapped with the parameters' public key:
// RSAES_OAEP_* directly; RSA_AES_KEY_WRAP_* as an RSA-OAEP-wrapped AES-256
// key followed by the material wrapped with it by AES key wrap with padding
// (RFC 5649), as the Developer Guide describes
// (https://docs.aws.amazon.com/kms/latest/developerguide/importing-keys-encrypt-key-material.html).
func (p *importParams) unwrap(wrapped []byte) ([]byte, error) {
	k, err := x509.ParsePKCS8PrivateKey(p.WrappingKey)
	if err != nil {
		return nil, err
	}
	priv := k.(*rsa.PrivateKey)
	hash := crypto.SHA256
	if p.Algorithm == "RSAES_OAEP_SHA_1" || p.Algorithm == "RSA_AES_KEY_WRAP_SHA_1" {
		hash = crypto.SHA1
	}
	if p.Algorithm == "RSAES_OAEP_SHA_1" || p.Algorithm == "RSAES_OAEP_SHA_256" {
		return rsa.DecryptOAEP(hash.New(), nil, priv, wrapped, nil)
	}
	size := priv.Size()
	if len(wrapped) <= size {
		return nil, errors.New("wrapped material too short")
	}
	aesKey, err := rsa.DecryptOAEP(hash.New(), nil, priv, wrapped[:size], nil)
	if err != nil {
		return nil, err
	}
	return unwrapWithPadding(aesKey, wrapped[size:])
}

// unwrapWithPadding is RFC 5649's AES key unwrap with padding.
func unwrapWithPadding(kek, wrapped []byte) ([]byte, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	if len(wrapped)%8 != 0 || len(wrapped) < 16 {
		return nil, errors.New("wrapped key length is not a multiple of 8")
	}
	n := len(wrapped)/8 - 1
	a := make([]byte, 8)
	r := make([]byte, len(wrapped)-8)
	copy(a, wrapped[:8])
	copy(r, wrapped[8:])
	buf := make([]byte, 16)
	if n == 1 {
		block.Decrypt(buf, wrapped)
		copy(a, buf[:8])
		copy(r, buf[8:])
	} else {
		for j := 5; j >= 0; j-- {
			for i := n; i >= 1; i-- {
				t := uint64(n*j + i)
				binary.BigEndian.PutUint64(buf[:8], binary.BigEndian.Uint64(a)^t)
				copy(buf[8:], r[(i-1)*8:i*8])
				block.Decrypt(buf, buf)
				copy(a, buf[:8])
				copy(r[(i-1)*8:i*8], buf[8:])
			}
		}
	}
	if subtle.ConstantTimeCompare(a[:4], []byte{0xa6, 0x59, 0x59, 0xa6}) != 1 {
		return nil, errors.New("integrity check failed")
	}
	length := int(binary.BigEndian.Uint32(a[4:]))
	if length > len(r) || length <= len(r)-8 || !bytes.Equal(r[length:], make([]byte, len(r)-length)) {
		return nil, errors.New("bad padding")
	}
	return r[:length], nil
}

// importKeyMaterial imports key material: EXISTING_KEY_MATERIAL re-imports
// material the key has (the same bytes: its id must match), NEW_KEY_MATERIAL
// adds the key's first material, or one pending rotation (symmetric keys
// only). The default is NEW_KEY_MATERIAL until the first import, then
// EXISTING_KEY_MATERIAL. The key is Enabled again once every material
// permanently associated with it is imported
// (https://docs.aws.amazon.com/kms/latest/developerguide/importing-keys-delete-key-material.html).
func (f *Front) importKeyMaterial(c *call) handler.Response {
	var in struct {
		KeyId                                 string
		ImportToken, EncryptedKeyMaterial     []byte
		ExpirationModel, ImportType           string
		ValidTo                               *float64
		KeyMaterialDescription, KeyMaterialId string
	}
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	model := in.ExpirationModel
	if model == "" {
		model = "KEY_MATERIAL_EXPIRES"
	}
	var validTo time.Time
	switch {
	case model != "KEY_MATERIAL_EXPIRES" && model != "KEY_MATERIAL_DOES_NOT_EXPIRE":
		return validationError("1 validation error detected: Value '%s' at 'expirationModel' failed to satisfy constraint: Member must satisfy enum value set: [KEY_MATERIAL_DOES_NOT_EXPIRE, KEY_MATERIAL_EXPIRES]", model)
	case model == "KEY_MATERIAL_EXPIRES" && in.ValidTo == nil:
		return validationError("A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES")
	case model == "KEY_MATERIAL_DOES_NOT_EXPIRE" && in.ValidTo != nil:
		return validationError("A validTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE")
	case in.ValidTo != nil:
		validTo = time.Unix(int64(*in.ValidTo), 0)
		// "The value of this parameter must be a future date and time. The
		// maximum value is 365 days from the request date."
		if !validTo.After(c.now) || validTo.After(c.now.AddDate(0, 0, 365)) {
			return validationError("ValidTo must be in the future and at most 365 days from now")
		}
	}
	key, resp := c.externalKey(in.KeyId)
	if key == nil {
		return resp
	}
	var extras keyExtras
	c.t.state.view(func(d *storeData) {
		if k := d.Keys[key.GetArn()]; k != nil {
			extras = *k
		}
	})
	params := extras.Import
	switch {
	case params == nil || !bytes.Equal(params.Token, in.ImportToken):
		return errorResponse(400, "InvalidImportTokenException", "Invalid import token")
	case !c.now.Before(params.ValidTo):
		return errorResponse(400, "ExpiredImportTokenException", "The import token has expired")
	}
	material, err := params.unwrap(in.EncryptedKeyMaterial)
	if err != nil {
		return errorResponse(400, "InvalidCiphertextException", "")
	}
	aesKey, symmetric := key.(*cmk.AesKey)
	if !symmetric {
		return c.importOnce(key, params.Algorithm, material, in.ImportType, in.KeyMaterialId, extras.Materials, model, validTo)
	}
	if len(material) != 32 {
		return errorResponse(400, "IncorrectKeyMaterialException", "Symmetric key material must be 256 bits")
	}
	keyID := key.GetMetadata().KeyId
	id := materialID(keyID, material)
	importType := in.ImportType
	if importType == "" {
		importType = "EXISTING_KEY_MATERIAL"
		if len(extras.Materials) == 0 {
			importType = "NEW_KEY_MATERIAL"
		}
	}
	materials := slices.Clone(extras.Materials)
	i := slices.IndexFunc(materials, func(m *keyMaterial) bool { return m.ID == id })
	switch importType {
	case "EXISTING_KEY_MATERIAL":
		if i < 0 || (in.KeyMaterialId != "" && in.KeyMaterialId != id) {
			return errorResponse(400, "IncorrectKeyMaterialException", "The key material does not match the key material previously imported into this KMS key")
		}
		m := *materials[i]
		m.Imported, m.ExpirationModel, m.ValidTo = true, model, validTo
		if in.KeyMaterialDescription != "" {
			m.Description = in.KeyMaterialDescription
		}
		materials[i] = &m
	case "NEW_KEY_MATERIAL":
		switch {
		case in.KeyMaterialId != "":
			return validationError("You cannot specify a KeyMaterialId with ImportType NEW_KEY_MATERIAL")
		case i >= 0:
			return errorResponse(400, "IncorrectKeyMaterialException", "This key material is already associated with the KMS key")
		case slices.ContainsFunc(materials, func(m *keyMaterial) bool { return m.State == materialPendingRotation }):
			return invalidState("%s already has key material pending rotation; delete it or rotate first", key.GetArn())
		}
		m := &keyMaterial{ID: id, Description: in.KeyMaterialDescription, State: materialCurrent, Imported: true,
			ExpirationModel: model, ValidTo: validTo}
		if len(materials) == 0 {
			aesKey.BackingKeys = [][32]byte{[32]byte(material)}
		} else {
			m.State, m.Pending = materialPendingRotation, material
		}
		materials = append(materials, m)
	default:
		return validationError("1 validation error detected: Value '%s' at 'importType' failed to satisfy constraint: Member must satisfy enum value set: [NEW_KEY_MATERIAL, EXISTING_KEY_MATERIAL]", importType)
	}
	if err := c.t.saveMaterials(key, materials); err != nil {
		return saveFailed(err)
	}
	return jsonResponse(200, map[string]any{"KeyId": key.GetArn(), "KeyMaterialId": id})
}

// saveMaterials stores a key's materials and brings its state and metadata
// in line: PendingImport while a permanently associated material is not
// imported, else Enabled if it was PendingImport; ExpirationModel and
// ValidTo are the current material's.
func (t *tenant) saveMaterials(key cmk.Key, materials []*keyMaterial) error {
	md := key.GetMetadata()
	complete := true
	for _, m := range materials {
		if m.State != materialPendingRotation && !m.Imported {
			complete = false
		}
		if m.State == materialCurrent {
			md.ExpirationModel, md.ValidTo = cmk.ExpirationModel(m.ExpirationModel), 0
			if !m.ValidTo.IsZero() {
				md.ValidTo = m.ValidTo.Unix()
			}
		}
	}
	switch {
	case pendingDeletion(key):
	case !complete:
		md.KeyState, md.Enabled = cmk.KeyStatePendingImport, false
	case md.KeyState == cmk.KeyStatePendingImport:
		md.KeyState, md.Enabled = cmk.KeyStateEnabled, true
	}
	if err := t.db.SaveKey(key); err != nil {
		return err
	}
	return t.state.update(func(d *storeData) bool {
		d.key(key.GetArn()).Materials = materials
		return true
	})
}

// materialsOf returns a key's materials.
func (t *tenant) materialsOf(arn string) []*keyMaterial {
	var materials []*keyMaterial
	t.state.view(func(d *storeData) {
		if k := d.Keys[arn]; k != nil {
			materials = slices.Clone(k.Materials)
		}
	})
	return materials
}

// deleteImportedKeyMaterial deletes a key material, the current one unless
// KeyMaterialId names another. Material pending rotation is forgotten ("not
// permanently associated with the KMS key"); deleting any other makes the
// key PendingImport until it is imported again.
func (f *Front) deleteImportedKeyMaterial(c *call) handler.Response {
	var in struct {
		KeyId, KeyMaterialId string
	}
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	key, resp := c.externalKey(in.KeyId)
	if key == nil {
		return resp
	}
	materials := c.t.materialsOf(key.GetArn())
	i := slices.IndexFunc(materials, func(m *keyMaterial) bool {
		return m.ID == in.KeyMaterialId || (in.KeyMaterialId == "" && m.State == materialCurrent)
	})
	if i < 0 {
		return notFound("Key material %s does not exist for %s", in.KeyMaterialId, key.GetArn())
	}
	id := materials[i].ID
	if materials[i].State == materialPendingRotation {
		materials = slices.Delete(materials, i, i+1)
	} else {
		m := *materials[i]
		m.Imported = false
		materials[i] = &m
	}
	if err := c.t.saveMaterials(key, materials); err != nil {
		return saveFailed(err)
	}
	return jsonResponse(200, map[string]any{"KeyId": key.GetArn(), "KeyMaterialId": id})
}

// expireMaterials deletes the imported materials of a key whose ValidTo has
// passed by the server's clock: "when imported key material with an
// expiration date expires, AWS KMS deletes the key material" (Delete
// imported key material, above).
func (t *tenant) expireMaterials(arn string, now time.Time) error {
	materials := t.materialsOf(arn)
	expired := false
	for i, m := range materials {
		if m.Imported && !m.ValidTo.IsZero() && !now.Before(m.ValidTo) {
			c := *m
			c.Imported = false
			if c.State == materialPendingRotation {
				c.Pending = nil
			}
			materials[i], expired = &c, true
		}
	}
	if !expired {
		return nil
	}
	materials = slices.DeleteFunc(materials, func(m *keyMaterial) bool { return m.State == materialPendingRotation && !m.Imported })
	key, err := t.db.LoadKey(arn)
	if err != nil || key == nil {
		return err
	}
	return t.saveMaterials(key, materials)
}

// rotateImported rotates an EXTERNAL key to its material pending rotation:
// "you must have already imported new key material and that key material's
// state should be PENDING_ROTATION" (RotateKeyOnDemand API reference). The
// old material stays, NON_CURRENT, to decrypt.
func (f *Front) rotateImported(c *call, key *cmk.AesKey) handler.Response {
	materials := c.t.materialsOf(key.GetArn())
	i := slices.IndexFunc(materials, func(m *keyMaterial) bool { return m.State == materialPendingRotation && m.Imported })
	if i < 0 {
		return invalidState("%s has no imported key material in PENDING_ROTATION state to rotate to", key.GetArn())
	}
	for j, m := range materials {
		if m.State == materialCurrent {
			old := *m
			old.State = materialNonCurrent
			materials[j] = &old
		}
	}
	m := *materials[i]
	key.BackingKeys = append(key.BackingKeys, [32]byte(m.Pending))
	m.State, m.Pending, m.RotationDate = materialCurrent, nil, c.now
	materials[i] = &m
	if err := c.t.saveMaterials(key, materials); err != nil {
		return saveFailed(err)
	}
	return jsonResponse(200, map[string]string{"KeyId": key.GetArn()})
}

// importedRotations lists an EXTERNAL key's materials as ListKeyRotations
// does: the completed rotations, and with ALL_KEY_MATERIAL the first
// material and the one pending rotation too.
func importedRotations(t *tenant, key cmk.Key, all bool) []map[string]any {
	entries := []map[string]any{}
	for _, m := range t.materialsOf(key.GetArn()) {
		if !all && m.RotationDate.IsZero() {
			continue
		}
		e := map[string]any{
			"KeyId": key.GetArn(), "KeyMaterialId": m.ID, "KeyMaterialState": m.State,
			"ImportState": "PENDING_IMPORT", "ExpirationModel": m.ExpirationModel,
		}
		if m.Imported {
			e["ImportState"] = "IMPORTED"
		}
		if m.Description != "" {
			e["KeyMaterialDescription"] = m.Description
		}
		if !m.ValidTo.IsZero() {
			e["ValidTo"] = m.ValidTo.Unix()
		}
		if !m.RotationDate.IsZero() {
			e["RotationDate"], e["RotationType"] = m.RotationDate.Unix(), "ON_DEMAND"
		}
		entries = append(entries, e)
	}
	return entries
}

// currentMaterialID is the id of an EXTERNAL key's current material, "" if
// it has none.
func (t *tenant) currentMaterialID(arn string) string {
	for _, m := range t.materialsOf(arn) {
		if m.State == materialCurrent {
			return m.ID
		}
	}
	return ""
}
