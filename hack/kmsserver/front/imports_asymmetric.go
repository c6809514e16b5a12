package front

// Imported key material of HMAC and asymmetric keys: "You can create a
// symmetric encryption KMS key, HMAC KMS key, asymmetric encryption KMS key,
// or asymmetric signing KMS key" with EXTERNAL origin, and "for asymmetric
// and HMAC keys, you cannot change the key material after the initial
// import" (ImportKeyMaterial API reference). HMAC material is 28 to 128
// bytes by key spec; private keys are DER PKCS #8 and must be wrapped with
// an RSA_AES wrapping algorithm ("To import an RSA private key, you must use
// an RSA_AES wrapping algorithm", GetParametersForImport API reference).
// ECC_SECG_P256K1 and SM2 material is not modelled (Go cannot parse it).

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nsmithuk/local-kms/src/cmk"
	"github.com/nsmithuk/local-kms/src/handler"
)

// externalKeySpecs are the key specs beyond SYMMETRIC_DEFAULT an EXTERNAL
// key can have here.
var externalKeySpecs = map[string]bool{
	"HMAC_224": true, "HMAC_256": true, "HMAC_384": true, "HMAC_512": true,
	"RSA_2048": true, "RSA_3072": true, "RSA_4096": true,
	"ECC_NIST_P256": true, "ECC_NIST_P384": true, "ECC_NIST_P521": true,
}

// hmacMaterialBytes is the length range of HMAC key material by key spec.
var hmacMaterialBytes = map[cmk.KeySpec][2]int{
	cmk.SpecHmac224: {28, 64}, cmk.SpecHmac256: {32, 64}, cmk.SpecHmac384: {48, 128}, cmk.SpecHmac512: {64, 128},
}

// makeExternal turns a key local-kms made with its own material into one
// waiting for imported material; the generated material is never used.
func makeExternal(key cmk.Key) {
	md := key.GetMetadata()
	md.Origin, md.KeyState, md.Enabled = cmk.KeyOriginExternal, cmk.KeyStatePendingImport, false
	if h, ok := key.(*cmk.HmacKey); ok {
		h.BackingKeys = [][]byte{}
	}
}

// importOnce imports the one material of an HMAC or asymmetric key: the
// first import sets it, later ones must bring the same bytes.
func (c *call) importOnce(key cmk.Key, algorithm string, material []byte, importType, keyMaterialID string, materials []*keyMaterial, model string, validTo time.Time) handler.Response {
	if importType != "" || keyMaterialID != "" {
		return validationError("ImportType and KeyMaterialId are only valid for symmetric encryption keys")
	}
	id := materialID(key.GetMetadata().KeyId, material)
	materials = slices.Clone(materials)
	if len(materials) > 0 && materials[0].ID != id {
		return errorResponse(400, "IncorrectKeyMaterialException", "The key material does not match the key material previously imported into this KMS key")
	}
	if len(materials) == 0 {
		if resp := setMaterial(key, algorithm, material); !resp.Empty() {
			return resp
		}
		materials = []*keyMaterial{{ID: id, State: materialCurrent}}
	}
	m := *materials[0]
	m.Imported, m.ExpirationModel, m.ValidTo = true, model, validTo
	materials[0] = &m
	if err := c.t.saveMaterials(key, materials); err != nil {
		return saveFailed(err)
	}
	return jsonResponse(200, map[string]any{"KeyId": key.GetArn()})
}

// setMaterial gives an HMAC or asymmetric key the imported material, checked
// against its key spec.
func setMaterial(key cmk.Key, algorithm string, material []byte) handler.Response {
	incorrect := func(msg string) handler.Response {
		return errorResponse(400, "IncorrectKeyMaterialException", msg)
	}
	spec := key.GetMetadata().KeySpec
	switch k := key.(type) {
	case *cmk.HmacKey:
		r := hmacMaterialBytes[spec]
		if len(material) < r[0] || len(material) > r[1] {
			return incorrect("HMAC key material for " + string(spec) + " must be between the key spec's minimum and maximum length")
		}
		k.BackingKeys = [][]byte{material}
	case *cmk.RsaKey:
		if !strings.HasPrefix(algorithm, "RSA_AES_KEY_WRAP") {
			return validationError("RSA key material must be wrapped with an RSA_AES wrapping algorithm")
		}
		priv, err := x509.ParsePKCS8PrivateKey(material)
		r, ok := priv.(*rsa.PrivateKey)
		if err != nil || !ok || "RSA_"+strconv.Itoa(r.N.BitLen()) != string(spec) {
			return incorrect("The key material is not a PKCS #8 RSA private key of the key's key spec " + string(spec))
		}
		k.PrivateKey = cmk.RsaPrivateKey(*r)
	case *cmk.EccKey:
		priv, err := x509.ParsePKCS8PrivateKey(material)
		e, ok := priv.(*ecdsa.PrivateKey)
		curves := map[cmk.KeySpec]elliptic.Curve{cmk.SpecEccNistP256: elliptic.P256(), cmk.SpecEccNistP384: elliptic.P384(), cmk.SpecEccNistP521: elliptic.P521()}
		if err != nil || !ok || curves[spec] != e.Curve {
			return incorrect("The key material is not a PKCS #8 EC private key on the curve of the key's key spec " + string(spec))
		}
		k.PrivateKey = cmk.EcdsaPrivateKey(*e)
	default:
		return errorResponse(400, "UnsupportedOperationException", key.GetArn()+" key spec "+string(spec)+" does not take imported key material here")
	}
	return handler.Response{}
}
