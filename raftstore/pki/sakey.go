package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
)

// ServiceAccountKeyFile holds the key that signs service account tokens.
// Every API server of a cluster must hold the same one, which is why it
// lives in the certificate directory beside the CA.
const ServiceAccountKeyFile = "sa.key"

func newServiceAccountKey() ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate service account key: %w", err)
	}
	return encodeKey(key)
}

// LoadServiceAccountKey reads dir/sa.key, an ECDSA key.
func LoadServiceAccountKey(dir string) (*ecdsa.PrivateKey, error) {
	path := filepath.Join(dir, ServiceAccountKeyFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: service account key: %w", err)
	}
	signer, err := parseKey(data)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", path, err)
	}
	key, ok := signer.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("pki: %s: want an ECDSA key, got %T", path, signer)
	}
	return key, nil
}
