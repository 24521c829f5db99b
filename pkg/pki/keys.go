package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// KeyType is the kind of key pair a certificate is made for. The zero value
// is ECDSAP256, the default everywhere in this package.
type KeyType int

const (
	// ECDSAP256 is ECDSA on NIST P-256 ("ecdsa-p256"): small, fast, and
	// accepted by every TLS stack seclisten is tested against.
	ECDSAP256 KeyType = iota
	// RSA2048 is RSA with a 2048-bit modulus ("rsa2048"), for clients that
	// cannot do ECDSA.
	RSA2048
	// Ed25519 is Ed25519 ("ed25519"). Go and OpenSSL 1.1.1+ accept it in
	// TLS 1.2 and 1.3; many other stacks do not.
	Ed25519
)

// keyTypeNames are the names ParseKeyType accepts and String returns, indexed
// by KeyType.
var keyTypeNames = [...]string{
	ECDSAP256: "ecdsa-p256",
	RSA2048:   "rsa2048",
	Ed25519:   "ed25519",
}

// String returns the name ParseKeyType accepts for k, such as "ecdsa-p256".
func (k KeyType) String() string {
	if k < 0 || int(k) >= len(keyTypeNames) {
		return fmt.Sprintf("KeyType(%d)", int(k))
	}
	return keyTypeNames[k]
}

// ParseKeyType returns the KeyType named s: "ecdsa-p256", "rsa2048" or
// "ed25519" (case does not matter).
func ParseKeyType(s string) (KeyType, error) {
	for k, name := range keyTypeNames {
		if strings.EqualFold(s, name) {
			return KeyType(k), nil
		}
	}
	return 0, fmt.Errorf("unknown key type %q (want %s)", s, strings.Join(keyTypeNames[:], ", "))
}

// generateKey makes a new private key of type k.
func generateKey(k KeyType) (crypto.Signer, error) {
	var (
		key crypto.Signer
		err error
	)
	switch k {
	case ECDSAP256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RSA2048:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case Ed25519:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("generate key: unknown key type %v", k)
	}
	if err != nil {
		return nil, fmt.Errorf("generate %v key: %w", k, err)
	}
	return key, nil
}

// encodeKeyPEM encodes key as a PKCS #8 "PRIVATE KEY" PEM block, the one
// form that holds all three key types and that OpenSSL 3 writes by default.
func encodeKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// EncodeCertPEM encodes cert as a "CERTIFICATE" PEM block.
func EncodeCertPEM(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}

// parseKeyPEM returns the first private key in data. It accepts PKCS #8
// ("PRIVATE KEY"), SEC 1 ("EC PRIVATE KEY") and PKCS #1 ("RSA PRIVATE KEY"),
// and skips other blocks, such as the "EC PARAMETERS" block that
// `openssl ecparam -genkey` writes before the key.
func parseKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no private key PEM block found")
		}
		switch block.Type {
		case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY":
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("encrypted private keys are not supported")
		default:
			continue
		}
		// Traditional (pre-PKCS #8) encryption marks the block with headers.
		if strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
			return nil, fmt.Errorf("encrypted %s is not supported", block.Type)
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		default: // "RSA PRIVATE KEY"
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", block.Type, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%T is not a signing key", key)
		}
		return signer, nil
	}
}

// parseCertPEM returns the first certificate in data, skipping other blocks.
func parseCertPEM(data []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no CERTIFICATE PEM block found")
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		return cert, nil
	}
}
