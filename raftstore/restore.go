package raftstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/barge-dev/barge/raftstore/lease"
	"github.com/barge-dev/barge/raftstore/snapfile"
	"github.com/hashicorp/raft"
)

// RestoreConfig describes the peer an offline restore prepares.
type RestoreConfig struct {
	DataDir        string
	Name           string
	InitialCluster []Peer
}

// PrepareRestore turns a snapshot file into the data directory of one
// member of a new cluster. Run it for every member with the same file and
// initial cluster; each then starts with `barge server` as usual and the
// cluster comes up with every key at the snapshot's revision.
func PrepareRestore(snapshot io.Reader, rc RestoreConfig) (snapfile.Metadata, error) {
	var self *Peer
	for i, p := range rc.InitialCluster {
		if p.Name == rc.Name {
			self = &rc.InitialCluster[i]
		}
	}
	if self == nil {
		return snapfile.Metadata{}, fmt.Errorf("--initial-cluster does not include --name %q", rc.Name)
	}
	if entries, err := os.ReadDir(rc.DataDir); err == nil && len(entries) > 0 {
		return snapfile.Metadata{}, fmt.Errorf("data dir %s is not empty; restore only into a new directory", rc.DataDir)
	}
	// Read and verify the whole file before creating anything.
	st, err := loadSnapshot(snapshot)
	if err != nil {
		return snapfile.Metadata{}, err
	}
	id := &identity{Name: rc.Name, MemberID: memberIDOf(*self), ClusterID: clusterIDOf(rc.InitialCluster)}
	// The snapshot becomes Raft index 1 of the new cluster's log.
	const index, term = 1, 1
	var buf bytes.Buffer
	meta := st.meta
	meta.ClusterID, meta.MemberID, meta.RaftIndex = id.ClusterID, id.MemberID, index
	if err := writeLoaded(&buf, st, meta); err != nil {
		return snapfile.Metadata{}, err
	}

	if err := os.MkdirAll(rc.DataDir, 0o700); err != nil {
		return snapfile.Metadata{}, fmt.Errorf("data dir: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			// Leave no half-prepared directory that could be started.
			os.RemoveAll(rc.DataDir)
		}
	}()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(rc.DataDir, 2, nil)
	if err != nil {
		return snapfile.Metadata{}, err
	}
	conf := raft.Configuration{}
	for _, p := range rc.InitialCluster {
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: serverID(memberIDOf(p)), Address: raft.ServerAddress(p.Addr)})
	}
	_, trans := raft.NewInmemTransport("")
	sink, err := snaps.Create(raft.SnapshotVersionMax, index, term, conf, index, trans)
	if err != nil {
		return snapfile.Metadata{}, fmt.Errorf("create raft snapshot: %w", err)
	}
	if _, err := sink.Write(buf.Bytes()); err != nil {
		sink.Cancel()
		return snapfile.Metadata{}, fmt.Errorf("write raft snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return snapfile.Metadata{}, fmt.Errorf("write raft snapshot: %w", err)
	}
	store, err := openStable(rc.DataDir)
	if err != nil {
		return snapfile.Metadata{}, err
	}
	// Raft must never start a term below the snapshot's.
	err = store.SetUint64([]byte("CurrentTerm"), term)
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return snapfile.Metadata{}, fmt.Errorf("write raft term: %w", err)
	}
	if err := saveIdentity(rc.DataDir, id); err != nil {
		return snapfile.Metadata{}, err
	}
	ok = true
	return meta, nil
}

func writeLoaded(w io.Writer, st *loadedState, meta snapfile.Metadata) error {
	view := st.store.View()
	meta.Revision, meta.CompactRevision, meta.KeyCount = view.Rev(), view.CompactRev(), view.LiveKeys()
	ls := make([]lease.Info, len(st.leases))
	for i, l := range st.leases {
		ls[i] = lease.Info{ID: l.ID, TTL: l.TTL}
	}
	snap := &fsmSnapshot{view: view, leases: ls, members: st.members, meta: meta}
	return snap.writeTo(w)
}

// RestoreLive replaces the running cluster's data with a snapshot's,
// through Raft, so every peer ends with the snapshot's keys. Membership is
// kept. Revisions never go backwards: if the cluster is already past the
// snapshot's revision, the restored state is stamped with the next
// revision and history before it is compacted, so open watches are told
// to re-list rather than silently missing the change. Only the leader
// can do this.
func (s *Server) RestoreLive(ctx context.Context, r io.Reader) (snapfile.Metadata, error) {
	if _, err := s.waitReady(ctx); err != nil {
		return snapfile.Metadata{}, err
	}
	st, err := loadSnapshot(r)
	if err != nil {
		return snapfile.Metadata{}, err
	}
	// Hold back new proposals so no write lands between choosing the
	// revision floor and installing the snapshot.
	s.gate.Lock()
	defer s.gate.Unlock()
	if cur := s.fsm.store.Rev(); st.store.Rev() <= cur {
		st.store.SetRevisionFloor(cur + 1)
	}
	st.members = s.fsm.members.list()
	meta := st.meta
	meta.ClusterID, meta.MemberID, meta.RaftIndex = s.id.ClusterID, s.id.MemberID, 0
	var buf bytes.Buffer
	if err := writeLoaded(&buf, st, meta); err != nil {
		return snapfile.Metadata{}, err
	}
	out, err := snapfile.NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		return snapfile.Metadata{}, err
	}
	meta = out.Metadata()
	if err := s.raft.Restore(&raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Size: int64(buf.Len())}, bytes.NewReader(buf.Bytes()), time.Minute); err != nil {
		return snapfile.Metadata{}, raftError(err)
	}
	// A command after the restore gives every follower an index to reach
	// through its own apply path, which linearizable reads wait on.
	if err := s.raft.Apply(encodeNoop(), time.Minute).Error(); err != nil {
		return meta, raftError(err)
	}
	s.logger.Info("live restore complete", "revision", meta.Revision, "keys", meta.KeyCount)
	return meta, nil
}
