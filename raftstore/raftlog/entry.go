package raftlog

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"go.etcd.io/raft/v3/raftpb"
)

// entryV1 starts the Data of every WAL entry this package writes. What
// follows is hashicorp/raft's Log minus its index and term, which the
// raftpb.Entry carries: the log type (one byte), AppendedAt in Unix
// nanoseconds (uvarint, 0 for none), the extensions (uvarint length, then
// bytes) and the data (the rest).
const entryV1 byte = 1

func encodeEntry(l *raft.Log) *raftpb.Entry {
	var at uint64
	if !l.AppendedAt.IsZero() {
		at = uint64(l.AppendedAt.UnixNano())
	}
	b := make([]byte, 0, 2+2*binary.MaxVarintLen64+len(l.Extensions)+len(l.Data))
	b = append(b, entryV1, byte(l.Type))
	b = binary.AppendUvarint(b, at)
	b = binary.AppendUvarint(b, uint64(len(l.Extensions)))
	b = append(b, l.Extensions...)
	b = append(b, l.Data...)
	return &raftpb.Entry{Term: new(l.Term), Index: new(l.Index), Type: raftpb.EntryType_EntryNormal.Enum(), Data: b}
}

// decodeEntry reads back what encodeEntry wrote. The WAL's CRC has
// vouched for the bytes; what this checks is that they are ours.
func decodeEntry(e *raftpb.Entry) (*raft.Log, error) {
	b := e.GetData()
	if len(b) < 2 {
		return nil, fmt.Errorf("entry %d: %d bytes, too short for a barge entry", e.GetIndex(), len(b))
	}
	if b[0] != entryV1 {
		return nil, fmt.Errorf("entry %d: format %d, want %d", e.GetIndex(), b[0], entryV1)
	}
	l := &raft.Log{Index: e.GetIndex(), Term: e.GetTerm(), Type: raft.LogType(b[1])}
	if l.Type > raft.LogConfiguration {
		return nil, fmt.Errorf("entry %d: unknown log type %d", e.GetIndex(), b[1])
	}
	b = b[2:]
	at, n := binary.Uvarint(b)
	if n <= 0 || at > 1<<63-1 {
		return nil, fmt.Errorf("entry %d: bad append time", e.GetIndex())
	}
	b = b[n:]
	if at != 0 {
		l.AppendedAt = time.Unix(0, int64(at))
	}
	ext, n := binary.Uvarint(b)
	if n <= 0 || ext > uint64(len(b)-n) {
		return nil, fmt.Errorf("entry %d: extensions length past the end", e.GetIndex())
	}
	b = b[n:]
	if ext > 0 {
		l.Extensions = b[:ext:ext]
	}
	if rest := b[ext:]; len(rest) > 0 {
		l.Data = rest
	}
	return l, nil
}
