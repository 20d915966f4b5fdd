package raftstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/hashicorp/raft"
)

// identity is who this peer is, fixed on first start and kept in the data
// directory, so a restart rejoins as the same member of the same cluster.
type identity struct {
	Name      string `json:"name"`
	MemberID  uint64 `json:"memberID,string"`
	ClusterID uint64 `json:"clusterID,string"`
}

const identityFile = "member.json"

func loadIdentity(dataDir string) (*identity, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, identityFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read member identity: %w", err)
	}
	var id identity
	if err := json.Unmarshal(b, &id); err != nil {
		return nil, fmt.Errorf("member identity %s: %w", filepath.Join(dataDir, identityFile), err)
	}
	if id.MemberID == 0 || id.ClusterID == 0 {
		return nil, fmt.Errorf("member identity %s: missing member or cluster ID", filepath.Join(dataDir, identityFile))
	}
	return &id, nil
}

func saveIdentity(dataDir string, id *identity) error {
	b, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dataDir, identityFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write member identity: %w", err)
	}
	f, err := os.Open(tmp)
	if err == nil {
		_ = f.Sync()
		f.Close()
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write member identity: %w", err)
	}
	return nil
}

// serverID is the Raft server ID of a member: its etcd member ID in hex.
func serverID(id uint64) raft.ServerID { return raft.ServerID(fmt.Sprintf("%016x", id)) }

func parseServerID(id raft.ServerID) (uint64, error) {
	return strconv.ParseUint(string(id), 16, 64)
}
