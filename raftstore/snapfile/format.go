package snapfile

import (
	"bytes"
	"errors"
	"fmt"
)

// The layout of format 1:
//
//	magic     8 bytes "BRGSNAP\x01"
//	header    uint32 big-endian length, then that many bytes of JSON Metadata
//	records   kind byte, uvarint payload length, payload
//	end       kind byte 0xFF
//	checksum  32 bytes, SHA-256 of every byte above
//
// Payloads (uvarints are unsigned LEB128, varints zig-zag, bytes are a
// uvarint length followed by the bytes):
//
//	key     bytes Key, bytes Value, varint CreateRevision, varint
//	        ModRevision, varint SubRevision, varint Version, varint Lease,
//	        flags byte (bit 0: Tombstone)
//	lease   varint ID, varint TTL
//	member  uvarint ID, bytes Name, uvarint n + n bytes ClientURLs,
//	        uvarint n + n bytes PeerURLs
//
// Key records come in key order, and the versions of one key oldest first,
// which is how the store iterates and how its loader needs them; leases and
// members may come anywhere. Every varint must be minimally encoded and a
// payload must be consumed exactly, so each record has a single encoding:
// re-encoding what a Reader returns reproduces the record bytes.
const (
	magic = "BRGSNAP\x01"

	kindEnd = 0xFF

	// maxHeaderBytes bounds the JSON header, which is a few hundred bytes
	// in practice; the cap keeps a hostile length from costing memory.
	maxHeaderBytes = 1 << 20
	// maxRecordBytes bounds one record. etcd values are at most 1.5 MiB by
	// default, so anything near this is corruption, not data.
	maxRecordBytes = 64 << 20

	flagTombstone = 1 << 0
)

var (
	// ErrNotSnapshot means the input does not start like a barge snapshot.
	ErrNotSnapshot = errors.New("not a barge snapshot file")
	// ErrUnsupportedFormat means the file was written by a newer barge.
	ErrUnsupportedFormat = errors.New("unsupported snapshot format")
	// ErrTruncated means the input ended before the snapshot did.
	ErrTruncated = errors.New("snapshot is truncated")
	// ErrChecksum means the content does not match its SHA-256 trailer.
	ErrChecksum = errors.New("snapshot checksum mismatch")
	// ErrCorrupt means the content is malformed.
	ErrCorrupt = errors.New("snapshot is corrupt")
)

// The check functions below are shared by Writer and Reader, so a file the
// writer accepts is always one the reader accepts. They return plain
// errors; the caller adds the sentinel and the position.

func checkMetadata(m *Metadata) error {
	switch {
	case m.Format < 1:
		return fmt.Errorf("format %d", m.Format)
	case m.Revision < 0:
		return fmt.Errorf("negative revision %d", m.Revision)
	case m.CompactRevision < 0 || m.CompactRevision > m.Revision:
		return fmt.Errorf("compact revision %d outside 0..%d", m.CompactRevision, m.Revision)
	case m.KeyCount < 0:
		return fmt.Errorf("negative key count %d", m.KeyCount)
	}
	return nil
}

func checkKey(kv *KeyVersion, rev int64) error {
	switch {
	case kv.ModRevision < 1 || kv.ModRevision > rev:
		return fmt.Errorf("key %q: mod revision %d outside 1..%d", shortKey(kv.Key), kv.ModRevision, rev)
	case kv.SubRevision < 0:
		return fmt.Errorf("key %q: negative sub revision %d", shortKey(kv.Key), kv.SubRevision)
	case kv.Version < 0:
		return fmt.Errorf("key %q: negative version %d", shortKey(kv.Key), kv.Version)
	case kv.CreateRevision > kv.ModRevision:
		return fmt.Errorf("key %q: create revision %d after mod revision %d", shortKey(kv.Key), kv.CreateRevision, kv.ModRevision)
	case kv.Tombstone && kv.CreateRevision < 0:
		return fmt.Errorf("key %q: tombstone with negative create revision %d", shortKey(kv.Key), kv.CreateRevision)
	case kv.Tombstone && len(kv.Value) != 0:
		// A deletion has nothing to restore; a value here means the
		// producer confused its flags.
		return fmt.Errorf("key %q: tombstone at revision %d carries a %d-byte value", shortKey(kv.Key), kv.ModRevision, len(kv.Value))
	case !kv.Tombstone && kv.CreateRevision < 1:
		return fmt.Errorf("key %q: create revision %d of a live version", shortKey(kv.Key), kv.CreateRevision)
	}
	return nil
}

// keyOrder remembers the last key version seen, to enforce the record
// order the store's loader depends on.
type keyOrder struct {
	have     bool
	key      []byte // owned copy: callers may reuse the slices they pass
	mod, sub int64
}

func (o *keyOrder) check(kv *KeyVersion) error {
	if o.have {
		switch c := bytes.Compare(kv.Key, o.key); {
		case c < 0:
			return fmt.Errorf("key %q after %q: keys out of order", shortKey(kv.Key), shortKey(o.key))
		case c == 0 && (kv.ModRevision < o.mod || kv.ModRevision == o.mod && kv.SubRevision <= o.sub):
			return fmt.Errorf("key %q: version at revision %d.%d after %d.%d: versions out of order",
				shortKey(kv.Key), kv.ModRevision, kv.SubRevision, o.mod, o.sub)
		}
	}
	o.have = true
	o.key = append(o.key[:0], kv.Key...)
	o.mod, o.sub = kv.ModRevision, kv.SubRevision
	return nil
}

func checkLease(l *Lease) error {
	switch {
	case l.ID == 0:
		// 0 is etcd's "no lease"; a key cannot be attached to it.
		return errors.New("lease ID 0")
	case l.TTL < 0:
		return fmt.Errorf("lease %x: negative TTL %d", l.ID, l.TTL)
	}
	return nil
}

func checkMember(m *Member) error {
	if m.ID == 0 {
		return fmt.Errorf("member %q: ID 0", m.Name)
	}
	return nil
}

// shortKey keeps error messages readable when a key is huge or binary.
func shortKey(k []byte) []byte {
	const limit = 64
	if len(k) > limit {
		return append(k[:limit:limit], "..."...)
	}
	return k
}
