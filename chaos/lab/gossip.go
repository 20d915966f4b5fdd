package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// gossipKeyringFile is node/gossip's KeyringFile, in the lab's certs
// directory, where `barge server` and `barge certs node` look for it.
const gossipKeyringFile = "gossip-keyring.json"

// gossipServers lists the servers' gossip addresses, but that of the
// server named except.
func (l *Lab) gossipServers(except string) []string {
	var out []string
	for _, s := range l.Hosts {
		if s.Role == RoleServer && s.Name != except && s.GossipAddr != "" {
			out = append(out, s.GossipAddr)
		}
	}
	return out
}

// gossipKeyring writes a fresh pool key into the certs directory with
// `barge gossip keygen --certs`, as a fresh CA is made for every lab: one
// left by a crashed earlier lab is replaced.
func (l *Lab) gossipKeyring(ctx context.Context) error {
	path := filepath.Join(l.Certs, gossipKeyringFile)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("lab: gossip keyring: %w", err)
	}
	if _, err := run(ctx, "", l.Barge, "gossip", "keygen", "--certs", l.Certs); err != nil {
		return fmt.Errorf("lab: gossip keyring: %w", err)
	}
	return nil
}
