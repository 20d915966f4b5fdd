package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// segment is one WAL file: its sequence number and the index of the
// first entry it was cut for, both in its name.
type segment struct {
	name       string
	seq, index uint64
}

// listSegments returns dir's segments in sequence order. Files that are
// not segments (etcd's .tmp preallocations, .broken copies) are skipped.
func listSegments(dir string) ([]segment, error) {
	names, err := fileutil.ReadDir(dir, fileutil.WithExt(".wal"))
	if err != nil {
		return nil, fmt.Errorf("raft log %s: %w", dir, err)
	}
	var segs []segment
	for _, n := range names {
		var sg segment
		if _, err := fmt.Sscanf(n, "%016x-%016x.wal", &sg.seq, &sg.index); err != nil || !strings.HasSuffix(n, ".wal") {
			continue
		}
		sg.name = n
		segs = append(segs, sg)
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].seq < segs[j].seq })
	return segs, nil
}

// checkSegments refuses a log with a segment missing: sequence numbers
// must follow each other. Purging removes segments from the front only,
// which leaves no gap. (The first index in a name may go down: a segment
// cut after a truncation starts below the one before it.)
func checkSegments(dir string) error {
	segs, err := listSegments(dir)
	if err != nil {
		return err
	}
	for i := 1; i < len(segs); i++ {
		prev, cur := segs[i-1], segs[i]
		if cur.seq != prev.seq+1 {
			return fmt.Errorf("raft log %s: segment %016x-*.wal is missing between %s and %s; refusing to start on a log with a hole", dir, prev.seq+1, prev.name, cur.name)
		}
	}
	return nil
}

// lastMarker finds the newest compaction marker, the last snapshot record
// in the log, and the highest index of any entry record. Only a torn last
// record is forgiven here; Open repairs it.
func lastMarker(dir string) (*walpb.Snapshot, uint64, error) {
	segs, err := listSegments(dir)
	if err != nil {
		return nil, 0, err
	}
	var maxIndex uint64
	var (
		files   []*os.File
		readers []fileutil.FileReader
	)
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, sg := range segs {
		f, err := os.Open(filepath.Join(dir, sg.name))
		if err != nil {
			return nil, 0, fmt.Errorf("raft log %s: %w", dir, err)
		}
		files = append(files, f)
		readers = append(readers, fileutil.NewFileReader(f))
	}
	dec := wal.NewDecoder(readers...)
	marker := &walpb.Snapshot{Index: new(uint64(0)), Term: new(uint64(0))}
	found := false
	rec := &walpb.Record{}
	for err = dec.Decode(rec); err == nil; err = dec.Decode(rec) {
		switch rec.GetType() {
		case wal.EntryType:
			e := &raftpb.Entry{}
			if err := proto.Unmarshal(rec.GetData(), e); err != nil {
				return nil, 0, fmt.Errorf("raft log %s: entry record: %w", dir, err)
			}
			maxIndex = max(maxIndex, e.GetIndex())
		case wal.SnapshotType:
			snap := &walpb.Snapshot{}
			if err := proto.Unmarshal(rec.GetData(), snap); err != nil {
				return nil, 0, fmt.Errorf("raft log %s: compaction marker: %w", dir, err)
			}
			marker, found = snap, true
		case wal.CrcType:
			if crc := dec.LastCRC(); crc != 0 && rec.Validate(crc) != nil {
				return nil, 0, fmt.Errorf("raft log %s: the CRC chain breaks where a segment begins (a segment replaced or reordered): %w", dir, wal.ErrCRCMismatch)
			}
			dec.UpdateCRC(rec.GetCrc())
		}
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, 0, fmt.Errorf("raft log %s does not read back, refusing to start on it: %w", dir, err)
	}
	if !found {
		return nil, 0, fmt.Errorf("raft log %s: no compaction marker in %d segments", dir, len(segs))
	}
	return &walpb.Snapshot{Index: marker.Index, Term: marker.Term}, maxIndex, nil
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// checkTornTail tells a torn write from damage in the middle of the last
// segment. A torn write leaves the last record cut short, and after it
// only what that same unfinished write put there; a flipped bit in a
// record's length makes the decoder stop in the same way, but intact
// records follow. So the bytes after the last valid record are searched
// for two consecutive intact records (the second's CRC chained to the
// first's): finding them means the log is damaged, not torn.
func checkTornTail(dir string) error {
	segs, err := listSegments(dir)
	if err != nil || len(segs) == 0 {
		return err
	}
	last := filepath.Join(dir, segs[len(segs)-1].name)
	data, err := os.ReadFile(last)
	if err != nil {
		return fmt.Errorf("raft log %s: %w", dir, err)
	}
	f, err := os.Open(last)
	if err != nil {
		return fmt.Errorf("raft log %s: %w", dir, err)
	}
	defer f.Close()
	dec := wal.NewDecoder(fileutil.NewFileReader(f))
	rec := &walpb.Record{}
	for err = dec.Decode(rec); err == nil; err = dec.Decode(rec) {
		if rec.GetType() == wal.CrcType {
			dec.UpdateCRC(rec.GetCrc())
		}
	}
	broken := dec.LastOffset()
	for off := broken + 8; off+8 <= int64(len(data)); off += 8 {
		r1, next, ok := frameAt(data, off)
		if !ok {
			continue
		}
		r2, _, ok := frameAt(data, next)
		if !ok || r2.GetType() == wal.CrcType {
			continue
		}
		if crc32.Update(r1.GetCrc(), crcTable, r2.GetData()) == r2.GetCrc() {
			return fmt.Errorf("raft log %s: file %s is damaged at offset %d, with intact records after it from offset %d: not a torn write; refusing to truncate", dir, segs[len(segs)-1].name, broken, off)
		}
	}
	return nil
}

// frameAt decodes the record framed at off, if one plausibly is, and the
// offset of the frame after it.
func frameAt(data []byte, off int64) (*walpb.Record, int64, bool) {
	if off+8 > int64(len(data)) {
		return nil, 0, false
	}
	lenField := int64(binary.LittleEndian.Uint64(data[off:]))
	recBytes := int64(uint64(lenField) & ^(uint64(0xff) << 56))
	var pad int64
	if lenField < 0 {
		pad = int64((uint64(lenField) >> 56) & 0x7)
	}
	if recBytes == 0 || off+8+recBytes+pad > int64(len(data)) {
		return nil, 0, false
	}
	rec := &walpb.Record{}
	if proto.Unmarshal(data[off+8:off+8+recBytes], rec) != nil || rec.Type == nil || rec.Crc == nil {
		return nil, 0, false
	}
	if t := rec.GetType(); t < wal.MetadataType || t > wal.SnapshotType {
		return nil, 0, false
	}
	return rec, off + 8 + recBytes + pad, true
}
