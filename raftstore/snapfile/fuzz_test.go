package snapfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzReader feeds arbitrary bytes to the reader. Nothing may panic, and
// whatever reads cleanly to io.EOF must be something the Writer would
// have produced: re-encoding the records gives the same record bytes.
func FuzzReader(f *testing.F) {
	valid := smallFile(f)
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(append(bytes.Clone(valid), 0))
	flipped := bytes.Clone(valid)
	flipped[len(flipped)/2] ^= 0x40
	f.Add(flipped)
	f.Add([]byte{})
	f.Add([]byte(magic))
	f.Add(rawFile([]byte(`{"format":1,"revision":3}`)))
	// A short header leaves the mutator's attention on the records.
	f.Add(rawFile([]byte(`{"format":1,"revision":300,"keyCount":2}`),
		rawRecord(byte(KindKey), rawKey(KeyVersion{Key: []byte("a"), Value: []byte("1"), CreateRevision: 1, ModRevision: 1, Version: 1})),
		rawRecord(byte(KindKey), rawKey(KeyVersion{Key: []byte("a"), ModRevision: 2, SubRevision: 1, Tombstone: true})),
		rawRecord(byte(KindKey), rawKey(KeyVersion{Key: []byte("b"), Value: []byte("22"), CreateRevision: 3, ModRevision: 200, Version: 9, Lease: 7})),
		rawRecord(byte(KindKey), rawKey(KeyVersion{Key: []byte("c"), CreateRevision: 4, ModRevision: 4, Version: 1})),
		rawRecord(byte(KindLease), rawLease(7, 60)),
		rawRecord(byte(KindMember), rawMember(Member{ID: 1, Name: "m", ClientURLs: []string{"c1", "c2"}, PeerURLs: []string{"p"}}))))
	f.Add(rawFile([]byte(`{"format":1,"revision":3,"keyCount":1}`),
		rawRecord(byte(KindKey), rawKey(KeyVersion{Key: []byte("k"), CreateRevision: 1, ModRevision: 2, Version: 2})),
		rawRecord(byte(KindLease), rawLease(-1, 0)),
		rawRecord(byte(KindMember), rawMember(Member{ID: 9, ClientURLs: []string{"u"}}))))

	f.Fuzz(func(t *testing.T, data []byte) {
		checkReads(t, data)
		// Random bytes almost never carry a matching SHA-256, which would
		// leave the record checks behind it unexplored; so each input is
		// also tried with its last 32 bytes replaced by a valid checksum.
		if len(data) > sha256.Size {
			fixed := bytes.Clone(data)
			sum := sha256.Sum256(fixed[:len(fixed)-sha256.Size])
			copy(fixed[len(fixed)-sha256.Size:], sum[:])
			checkReads(t, fixed)
		}
	})
}

func checkReads(t *testing.T, data []byte) {
	t.Helper()
	meta, recs, err := readAll(bytes.NewReader(data))
	_, _, verr := Verify(bytes.NewReader(data))
	if err != nil {
		if verr == nil {
			t.Fatalf("Verify accepted what the reader rejects: %v", err)
		}
		for _, s := range []error{ErrNotSnapshot, ErrUnsupportedFormat, ErrTruncated, ErrChecksum, ErrCorrupt} {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("error wraps no sentinel: %v", err)
	}

	var buf bytes.Buffer
	w, err := NewWriter(&buf, meta)
	if err != nil {
		t.Fatalf("NewWriter refuses metadata the reader accepted: %v", err)
	}
	for i, rec := range recs {
		if err := writeRecord(w, rec); err != nil {
			t.Fatalf("Writer refuses record %d the reader accepted: %v", i+1, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	meta2, recs2, err := readAll(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("re-encoded snapshot does not read: %v", err)
	}
	if !sameMeta(meta, meta2) {
		t.Fatalf("metadata %+v re-read as %+v", meta, meta2)
	}
	if err := sameRecords(recs2, recs); err != nil {
		t.Fatalf("re-encoded records differ: %v", err)
	}
	// The header's JSON may be spelled differently, but the records
	// have a single encoding.
	if b1, b2 := body(data), body(buf.Bytes()); !bytes.Equal(b1, b2) {
		t.Fatalf("record bytes differ after re-encoding:\n got %x\nwant %x", b2, b1)
	}
}

// body returns the records of a valid file, between header and end marker.
func body(file []byte) []byte {
	hl := binary.BigEndian.Uint32(file[len(magic):])
	return file[len(magic)+4+int(hl) : len(file)-1-32]
}
