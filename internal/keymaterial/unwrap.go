package keymaterial

import (
	"bytes"
	"crypto/aes"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
)

// Unwrap is what KMS does with wrapped material: the inverse of Wrap, with
// the wrapping private key. The operator never unwraps; the in-memory KMS of
// the unit tests does.
func Unwrap(algorithm string, priv *rsa.PrivateKey, wrapped []byte) ([]byte, error) {
	switch algorithm {
	case RSAESOAEPSHA256:
		return rsa.DecryptOAEP(sha256.New(), nil, priv, wrapped, nil)
	case RSAAESKeyWrapSHA256:
		size := priv.Size()
		if len(wrapped) <= size {
			return nil, errors.New("wrapped material too short")
		}
		kek, err := rsa.DecryptOAEP(sha256.New(), nil, priv, wrapped[:size], nil)
		if err != nil {
			return nil, err
		}
		return unwrapWithPadding(kek, wrapped[size:])
	}
	return nil, fmt.Errorf("wrapping algorithm %s is not supported", algorithm)
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
	buf := make([]byte, 16)
	if n == 1 {
		block.Decrypt(buf, wrapped)
		copy(a, buf[:8])
		copy(r, buf[8:])
	} else {
		copy(a, wrapped[:8])
		copy(r, wrapped[8:])
		for j := 5; j >= 0; j-- {
			for i := n; i >= 1; i-- {
				binary.BigEndian.PutUint64(buf[:8], binary.BigEndian.Uint64(a)^uint64(n*j+i))
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
