package snapfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"
	"time"
)

func testMeta(rev int64, keyCount int64) Metadata {
	return Metadata{
		Revision:        rev,
		CompactRevision: rev / 2,
		KeyCount:        keyCount,
		ClusterID:       0xc1a5,
		MemberID:        0x3e3,
		RaftIndex:       1234,
		RaftTerm:        7,
		CreatedAt:       time.Date(2025, 3, 4, 5, 6, 7, 890123456, time.UTC),
		BargeVersion:    "v0.0.0-test",
	}
}

// smallRecords is a snapshot with one of everything, used where every byte
// offset is tried; keep it small.
func smallRecords() (Metadata, []Record) {
	return testMeta(10, 3), []Record{
		keyRec(&KeyVersion{Key: nil, Value: []byte("root"), CreateRevision: 2, ModRevision: 2, Version: 1}),
		keyRec(&KeyVersion{Key: []byte("a"), Value: []byte("1"), CreateRevision: 2, ModRevision: 2, SubRevision: 1, Version: 1}),
		keyRec(&KeyVersion{Key: []byte("a"), ModRevision: 5, Tombstone: true}),
		keyRec(&KeyVersion{Key: []byte("b"), Value: []byte{}, CreateRevision: 3, ModRevision: 4, Version: 2, Lease: 0x10}),
		keyRec(&KeyVersion{Key: []byte("c"), Value: []byte("x\x00y"), CreateRevision: 9, ModRevision: 10, Version: 2}),
		{Kind: KindLease, Lease: &Lease{ID: 0x10, TTL: 30}},
		{Kind: KindMember, Member: &Member{ID: 0x3e3, Name: "n1", ClientURLs: []string{"https://10.0.0.1:2379"}, PeerURLs: []string{"https://10.0.0.1:2380"}}},
	}
}

func keyRec(kv *KeyVersion) Record { return Record{Kind: KindKey, Key: kv} }

func writeRecord(w *Writer, rec Record) error {
	switch rec.Kind {
	case KindKey:
		return w.WriteKey(rec.Key)
	case KindLease:
		return w.WriteLease(rec.Lease)
	case KindMember:
		return w.WriteMember(rec.Member)
	}
	return fmt.Errorf("test: record kind %d", rec.Kind)
}

func encode(t testing.TB, meta Metadata, recs []Record) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, meta)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	for i, rec := range recs {
		if err := writeRecord(w, rec); err != nil {
			t.Fatalf("write record %d: %v", i+1, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return buf.Bytes()
}

func smallFile(t testing.TB) []byte {
	meta, recs := smallRecords()
	return encode(t, meta, recs)
}

// readAll reads a stream to its end, returning the records read before any
// error.
func readAll(r io.Reader) (Metadata, []Record, error) {
	sr, err := NewReader(r)
	if err != nil {
		return Metadata{}, nil, err
	}
	var recs []Record
	for {
		rec, err := sr.Next()
		if errors.Is(err, io.EOF) {
			return sr.Metadata(), recs, nil
		}
		if err != nil {
			return sr.Metadata(), recs, err
		}
		recs = append(recs, rec)
	}
}

// sameRecords compares record lists treating nil and empty slices alike,
// as the format does.
func sameRecords(a, b []Record) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d records, want %d", len(a), len(b))
	}
	for i := range a {
		if err := sameRecord(a[i], b[i]); err != nil {
			return fmt.Errorf("record %d: %v", i+1, err)
		}
	}
	return nil
}

func sameRecord(a, b Record) error {
	if a.Kind != b.Kind {
		return fmt.Errorf("kind %d, want %d", a.Kind, b.Kind)
	}
	set := func(r Record) int {
		n := 0
		for _, p := range []bool{r.Key != nil, r.Lease != nil, r.Member != nil} {
			if p {
				n++
			}
		}
		return n
	}
	if set(a) != 1 || set(b) != 1 {
		return fmt.Errorf("record sets %d and %d fields, want 1", set(a), set(b))
	}
	switch a.Kind {
	case KindKey:
		x, y := *a.Key, *b.Key
		if !bytes.Equal(x.Key, y.Key) || !bytes.Equal(x.Value, y.Value) {
			return fmt.Errorf("key %q=%q, want %q=%q", x.Key, x.Value, y.Key, y.Value)
		}
		x.Key, x.Value, y.Key, y.Value = nil, nil, nil, nil
		if !reflect.DeepEqual(x, y) {
			return fmt.Errorf("key version %+v, want %+v", x, y)
		}
	case KindLease:
		if *a.Lease != *b.Lease {
			return fmt.Errorf("lease %+v, want %+v", *a.Lease, *b.Lease)
		}
	case KindMember:
		x, y := a.Member, b.Member
		if x.ID != y.ID || x.Name != y.Name || !sameStrings(x.ClientURLs, y.ClientURLs) || !sameStrings(x.PeerURLs, y.PeerURLs) {
			return fmt.Errorf("member %+v, want %+v", *x, *y)
		}
	}
	return nil
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sameMeta(a, b Metadata) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return false
	}
	a.CreatedAt, b.CreatedAt = time.Time{}, time.Time{}
	return a == b
}

// The raw* helpers build files byte by byte, independently of Writer, so
// tests can produce what Writer refuses to and so the layout documented in
// format.go is checked against a second implementation.

// rawFile assembles magic, header and body and appends a valid end marker
// and checksum.
func rawFile(header []byte, body ...[]byte) []byte {
	b := []byte(magic)
	b = binary.BigEndian.AppendUint32(b, uint32(len(header)))
	b = append(b, header...)
	for _, p := range body {
		b = append(b, p...)
	}
	b = append(b, kindEnd)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

func rawHeader(meta Metadata) []byte {
	if meta.Format == 0 {
		meta.Format = FormatVersion
	}
	h, err := json.Marshal(meta)
	if err != nil {
		panic(err)
	}
	return h
}

func rawRecord(kind byte, payload []byte) []byte {
	b := []byte{kind}
	b = binary.AppendUvarint(b, uint64(len(payload)))
	return append(b, payload...)
}

func rawBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func rawKey(kv KeyVersion) []byte {
	var b []byte
	b = rawBytes(b, kv.Key)
	b = rawBytes(b, kv.Value)
	for _, v := range []int64{kv.CreateRevision, kv.ModRevision, kv.SubRevision, kv.Version, kv.Lease} {
		b = binary.AppendVarint(b, v)
	}
	if kv.Tombstone {
		return append(b, 1)
	}
	return append(b, 0)
}

func rawLease(id, ttl int64) []byte {
	return binary.AppendVarint(binary.AppendVarint(nil, id), ttl)
}

func rawMember(m Member) []byte {
	b := binary.AppendUvarint(nil, m.ID)
	b = rawBytes(b, []byte(m.Name))
	for _, urls := range [][]string{m.ClientURLs, m.PeerURLs} {
		b = binary.AppendUvarint(b, uint64(len(urls)))
		for _, u := range urls {
			b = rawBytes(b, []byte(u))
		}
	}
	return b
}
