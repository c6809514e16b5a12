// Package keymaterial prepares key material a user keeps in a Kubernetes
// Secret for import into an EXTERNAL KMS key: it checks the material against
// the key spec (the "Requirements for imported key material" of the KMS
// developer guide) and wraps it with the public key GetParametersForImport
// returns, with Go's standard crypto only. Errors describe the material's
// form (its length, its type), never its bytes: they end up in status.
package keymaterial

import (
	"crypto/aes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// Wrapping algorithms (GetParametersForImport's AlgorithmSpec) and the
// wrapping key the operator asks for: the largest KMS offers.
const (
	RSAESOAEPSHA256     = "RSAES_OAEP_SHA_256"
	RSAAESKeyWrapSHA256 = "RSA_AES_KEY_WRAP_SHA_256"
	WrappingKeySpec     = "RSA_4096"
)

// WrappingAlgorithm is the algorithm that can wrap material of keySpec:
// RSA-OAEP for symmetric and HMAC material, which is short; RSA-AES key
// wrap for private keys, which RSA-OAEP cannot hold ("To import an RSA
// private key, you must use an RSA_AES wrapping algorithm",
// GetParametersForImport API reference).
func WrappingAlgorithm(keySpec string) string {
	if keySpec == "SYMMETRIC_DEFAULT" || strings.HasPrefix(keySpec, "HMAC_") {
		return RSAESOAEPSHA256
	}
	return RSAAESKeyWrapSHA256
}

// hmacLengths are the lengths in bytes KMS accepts for HMAC key material.
var hmacLengths = map[string][2]int{
	"HMAC_224": {28, 64}, "HMAC_256": {32, 64}, "HMAC_384": {48, 128}, "HMAC_512": {64, 128},
}

// Parse checks data, as kept in a Secret, against keySpec and returns the
// material to import: the raw bytes of symmetric and HMAC material (256 bits
// for SYMMETRIC_DEFAULT), and a DER PKCS #8 private key for asymmetric keys,
// given as DER or PEM (PKCS #8, PKCS #1 RSA or SEC 1 EC).
func Parse(keySpec string, data []byte) ([]byte, error) {
	if keySpec == "SYMMETRIC_DEFAULT" {
		if len(data) != 32 {
			return nil, fmt.Errorf("key material for keySpec SYMMETRIC_DEFAULT is 32 bytes (256 bits) of binary data, not %d bytes", len(data))
		}
		return data, nil
	}
	if r, ok := hmacLengths[keySpec]; ok {
		if len(data) < r[0] || len(data) > r[1] {
			return nil, fmt.Errorf("key material for keySpec %s is %d to %d bytes of binary data, not %d bytes", keySpec, r[0], r[1], len(data))
		}
		return data, nil
	}
	return parsePrivateKey(keySpec, data)
}

// parsePrivateKey returns the PKCS #8 DER form of a private key of keySpec.
// Curves Go cannot parse (ECC_SECG_P256K1, SM2) pass as given in PKCS #8:
// KMS checks them.
func parsePrivateKey(keySpec string, data []byte) ([]byte, error) {
	der := data
	if block, _ := pem.Decode(data); block != nil {
		switch block.Type {
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				return nil, errors.New("the PEM block RSA PRIVATE KEY does not hold a PKCS #1 private key")
			}
			return checkedPKCS8(keySpec, k)
		case "EC PRIVATE KEY":
			k, err := x509.ParseECPrivateKey(block.Bytes)
			if err != nil {
				return nil, errors.New("the PEM block EC PRIVATE KEY does not hold a SEC 1 private key")
			}
			return checkedPKCS8(keySpec, k)
		case "PRIVATE KEY":
			der = block.Bytes
		default:
			return nil, fmt.Errorf("key material for keySpec %s is a private key (PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY, or DER PKCS #8), not PEM %s", keySpec, block.Type)
		}
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		if keySpec == "ECC_SECG_P256K1" || keySpec == "SM2" {
			return der, nil
		}
		return nil, fmt.Errorf("key material for keySpec %s is a private key in PEM or DER PKCS #8 form; it does not parse as one", keySpec)
	}
	return checkedPKCS8(keySpec, k)
}

// checkedPKCS8 checks that k is a private key of keySpec and returns it in
// PKCS #8 DER.
func checkedPKCS8(keySpec string, k any) ([]byte, error) {
	var got string
	switch k := k.(type) {
	case *rsa.PrivateKey:
		got = fmt.Sprintf("RSA_%d", k.N.BitLen())
	case *ecdsa.PrivateKey:
		got = map[elliptic.Curve]string{elliptic.P256(): "ECC_NIST_P256", elliptic.P384(): "ECC_NIST_P384", elliptic.P521(): "ECC_NIST_P521"}[k.Curve]
	default:
		got = fmt.Sprintf("%T", k)
	}
	if got != keySpec {
		return nil, fmt.Errorf("key material is a %s private key, but the key's keySpec is %s", got, keySpec)
	}
	return x509.MarshalPKCS8PrivateKey(k)
}

// Wrap encrypts material with the wrapping public key (DER
// SubjectPublicKeyInfo) that GetParametersForImport returned, as algorithm
// says: RSAES_OAEP_SHA_256 directly; RSA_AES_KEY_WRAP_SHA_256 as a fresh
// AES-256 key wrapped with RSA-OAEP-SHA-256 followed by the material wrapped
// with it by AES key wrap with padding (RFC 5649), as the KMS developer
// guide's "Encrypt the key material" describes.
func Wrap(algorithm string, publicKey, material []byte) ([]byte, error) {
	pub, err := x509.ParsePKIXPublicKey(publicKey)
	if err != nil {
		return nil, fmt.Errorf("the wrapping public key KMS returned does not parse: %w", err)
	}
	rsaPub, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("the wrapping public key KMS returned is a %T, not an RSA key", pub)
	}
	switch algorithm {
	case RSAESOAEPSHA256:
		return rsa.EncryptOAEP(sha256.New(), rand.Reader, rsaPub, material, nil)
	case RSAAESKeyWrapSHA256:
		kek := make([]byte, 32)
		if _, err := rand.Read(kek); err != nil {
			return nil, err
		}
		defer clear(kek)
		wrappedKEK, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, rsaPub, kek, nil)
		if err != nil {
			return nil, err
		}
		wrapped, err := wrapWithPadding(kek, material)
		if err != nil {
			return nil, err
		}
		return append(wrappedKEK, wrapped...), nil
	}
	return nil, fmt.Errorf("wrapping algorithm %s is not supported", algorithm)
}

// wrapWithPadding is RFC 5649's AES key wrap with padding.
func wrapWithPadding(kek, plaintext []byte) ([]byte, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	aiv := make([]byte, 8)
	copy(aiv, []byte{0xa6, 0x59, 0x59, 0xa6})
	binary.BigEndian.PutUint32(aiv[4:], uint32(len(plaintext)))
	padded := make([]byte, (len(plaintext)+7)/8*8)
	copy(padded, plaintext)
	defer clear(padded)
	if len(padded) == 8 {
		out := make([]byte, 16)
		block.Encrypt(out, append(aiv, padded...))
		return out, nil
	}
	// RFC 3394's wrapping process with the alternative initial value.
	n := len(padded) / 8
	a := aiv
	r := padded
	buf := make([]byte, 16)
	for j := range 6 {
		for i := 1; i <= n; i++ {
			copy(buf, a)
			copy(buf[8:], r[(i-1)*8:i*8])
			block.Encrypt(buf, buf)
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(a, binary.BigEndian.Uint64(buf[:8])^t)
			copy(r[(i-1)*8:i*8], buf[8:])
		}
	}
	return append(append([]byte{}, a...), r...), nil
}
