package keymaterial

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pkcs8RSA, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	pkcs8EC, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	pemOf := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	secret := bytes.Repeat([]byte{0x5a}, 32)
	cases := map[string]struct {
		reason  string
		keySpec string
		data    []byte
		want    []byte // nil: an error is expected
		wantErr string
	}{
		"Symmetric":      {"256 bits of binary data are symmetric material as they are.", "SYMMETRIC_DEFAULT", secret, secret, ""},
		"SymmetricShort": {"Anything but 32 bytes is refused, saying how long it is.", "SYMMETRIC_DEFAULT", secret[:31], nil, "32 bytes (256 bits) of binary data, not 31 bytes"},
		"HMAC":           {"HMAC material may be longer than its digest, up to KMS's maximum.", "HMAC_256", bytes.Repeat([]byte{1}, 64), bytes.Repeat([]byte{1}, 64), ""},
		"HMACShort":      {"HMAC_384 material is at least 48 bytes.", "HMAC_384", secret, nil, "48 to 128 bytes"},
		"RSAPKCS1PEM":    {"A PKCS #1 PEM private key becomes PKCS #8 DER.", "RSA_2048", pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), pkcs8RSA, ""},
		"RSAPKCS8DER":    {"PKCS #8 DER passes as it is.", "RSA_2048", pkcs8RSA, pkcs8RSA, ""},
		"RSAWrongSize":   {"The key's size must be the key spec's.", "RSA_3072", pkcs8RSA, nil, "is a RSA_2048 private key, but the key's keySpec is RSA_3072"},
		"ECSEC1PEM":      {"A SEC 1 PEM EC key becomes PKCS #8 DER.", "ECC_NIST_P256", pemOf("EC PRIVATE KEY", sec1), pkcs8EC, ""},
		"ECWrongCurve":   {"The curve must be the key spec's.", "ECC_NIST_P384", pkcs8EC, nil, "is a ECC_NIST_P256 private key"},
		"Certificate":    {"A PEM block that holds no private key is named.", "RSA_2048", pemOf("CERTIFICATE", []byte("x")), nil, "not PEM CERTIFICATE"},
		"Garbage":        {"Bytes that are no private key are refused without being shown.", "ECC_NIST_P256", secret, nil, "does not parse"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := Parse(tc.keySpec, tc.data)
			if tc.want != nil {
				if err != nil || !bytes.Equal(got, tc.want) {
					t.Errorf("%s\nParse: %v (equal: %v)", tc.reason, err, bytes.Equal(got, tc.want))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s\nParse error %v; want one containing %q", tc.reason, err, tc.wantErr)
			}
			if err != nil && bytes.Contains([]byte(err.Error()), tc.data) {
				t.Errorf("%s\nthe error shows the material", tc.reason)
			}
		})
	}
}

func TestWrapUnwrap(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	cases := map[string]struct {
		reason    string
		algorithm string
		size      int
	}{
		"OAEPSymmetric":   {"256-bit material is wrapped by RSA-OAEP directly.", RSAESOAEPSHA256, 32},
		"KeyWrapOneBlock": {"Material of up to 8 bytes is one AES block with the RFC 5649 header.", RSAAESKeyWrapSHA256, 5},
		"KeyWrapPadded":   {"Material not a multiple of 8 bytes is padded and its length kept.", RSAAESKeyWrapSHA256, 33},
		"KeyWrapLarge":    {"A private key is far longer than RSA-OAEP can take.", RSAAESKeyWrapSHA256, 1218},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			material := make([]byte, tc.size)
			_, _ = rand.Read(material)
			wrapped, err := Wrap(tc.algorithm, pub, material)
			if err != nil {
				t.Fatalf("%s\nWrap: %v", tc.reason, err)
			}
			if bytes.Contains(wrapped, material) {
				t.Errorf("%s\nthe wrapped form contains the material", tc.reason)
			}
			got, err := Unwrap(tc.algorithm, priv, wrapped)
			if err != nil {
				t.Fatalf("%s\nUnwrap: %v", tc.reason, err)
			}
			if diff := cmp.Diff(material, got); diff != "" {
				t.Errorf("%s\n-want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestWrappingAlgorithm(t *testing.T) {
	got := map[string]string{}
	for _, spec := range []string{"SYMMETRIC_DEFAULT", "HMAC_512", "RSA_4096", "ECC_NIST_P521"} {
		got[spec] = WrappingAlgorithm(spec)
	}
	want := map[string]string{"SYMMETRIC_DEFAULT": RSAESOAEPSHA256, "HMAC_512": RSAESOAEPSHA256, "RSA_4096": RSAAESKeyWrapSHA256, "ECC_NIST_P521": RSAAESKeyWrapSHA256}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RSA private keys need RSA-AES key wrap; short material takes RSA-OAEP\n-want +got:\n%s", diff)
	}
}
