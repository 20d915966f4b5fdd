package gossip

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/memberlist"
)

// KeyringFile is the keyring's name in a certificate directory, next to
// ca.crt: a JSON list of base64 AES keys, the primary (encrypting) key
// first, as
//
//	["pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=", "..."]
//
// Every member decrypts with any key of the list, so rotation installs a
// new key everywhere before any member encrypts with it.
const KeyringFile = "gossip-keyring.json"

// KeySize is the size of keys GenerateKey makes (AES-256). memberlist also
// takes 16 and 24 bytes.
const KeySize = 32

// GenerateKey returns a new random key, base64 encoded as the CLI and the
// keyring file show keys.
func GenerateKey() (string, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return "", fmt.Errorf("gossip: generate key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(k), nil
}

// ParseKey decodes a base64 key and checks its size.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("gossip key is empty")
	}
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("gossip key %s: not base64: %w", redact(s), err)
	}
	if err := memberlist.ValidateKey(k); err != nil {
		return nil, fmt.Errorf("gossip key %s: %d bytes: %w", redact(s), len(k), err)
	}
	return k, nil
}

// redact shows enough of a key to tell keys apart in an error, not enough
// to use it.
func redact(s string) string {
	if len(s) <= 6 {
		return "(" + fmt.Sprint(len(s)) + " characters)"
	}
	return s[:6] + "..."
}

// EncodeKey is the inverse of ParseKey.
func EncodeKey(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

// ReadKeyring reads a keyring file: its keys, primary first. A file that
// holds a single bare base64 key (as `consul keygen` prints) is read as a
// keyring of that one key.
func ReadKeyring(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gossip keyring: %w", err)
	}
	keys, err := parseKeyring(data)
	if err != nil {
		return nil, fmt.Errorf("gossip keyring %s: %w", path, err)
	}
	return keys, nil
}

func parseKeyring(data []byte) ([][]byte, error) {
	data = bytes.TrimSpace(data)
	var list []string
	if len(data) > 0 && data[0] == '[' {
		if err := json.Unmarshal(data, &list); err != nil {
			return nil, fmt.Errorf("want a JSON list of base64 keys: %w", err)
		}
	} else {
		list = []string{string(data)}
	}
	if len(list) == 0 || (len(list) == 1 && list[0] == "") {
		return nil, errors.New("no keys: gossip is always encrypted, so a member needs at least one")
	}
	keys := make([][]byte, 0, len(list))
	for i, s := range list {
		k, err := ParseKey(s)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		for _, prev := range keys {
			if bytes.Equal(prev, k) {
				return nil, fmt.Errorf("key %d (%s) is listed twice", i+1, redact(s))
			}
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// WriteKeyring replaces path atomically with keys, primary first, mode
// 0600: a crash mid-write never leaves a member unable to decrypt.
func WriteKeyring(path string, keys [][]byte) error {
	if len(keys) == 0 {
		return errors.New("gossip keyring: refusing to write a keyring with no keys")
	}
	list := make([]string, len(keys))
	for i, k := range keys {
		if err := memberlist.ValidateKey(k); err != nil {
			return fmt.Errorf("gossip keyring: key %d: %w", i+1, err)
		}
		list[i] = EncodeKey(k)
	}
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("gossip keyring: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("gossip keyring: write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("gossip keyring: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("gossip keyring: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("gossip keyring: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("gossip keyring: write %s: %w", path, err)
	}
	// The rename is durable only once the directory is synced.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// InitKeyring writes a keyring of one new key to dir/KeyringFile unless
// the file exists; `barge certs init` calls it so that every certificate
// directory can start a member.
func InitKeyring(dir string) (path string, created bool, err error) {
	path = filepath.Join(dir, KeyringFile)
	if _, err := os.Lstat(path); err == nil {
		return path, false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return path, false, fmt.Errorf("gossip keyring: %w", err)
	}
	s, err := GenerateKey()
	if err != nil {
		return path, false, err
	}
	k, _ := ParseKey(s)
	if err := WriteKeyring(path, [][]byte{k}); err != nil {
		return path, false, err
	}
	return path, true, nil
}
