package snapfile

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func TestRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	huge := make([]byte, 20<<20)
	rand.NewChaCha8([32]byte{1}).Read(huge)

	many := func() (Metadata, []Record) {
		rng := rand.New(rand.NewPCG(3, 4))
		var recs []Record
		rev := int64(1)
		for i := range 5000 {
			key := fmt.Appendf(nil, "/registry/pods/ns-%03d/pod-%06d", i%97, i)
			create := rev
			for v := range 1 + rng.IntN(3) {
				val := make([]byte, rng.IntN(200))
				for j := range val {
					val[j] = byte(rng.Uint32())
				}
				recs = append(recs, keyRec(&KeyVersion{Key: key, Value: val, CreateRevision: create, ModRevision: rev, SubRevision: int64(v), Version: int64(v + 1), Lease: int64(rng.IntN(3))}))
			}
			if rng.IntN(4) == 0 {
				rev++
				recs = append(recs, keyRec(&KeyVersion{Key: key, ModRevision: rev, Tombstone: true}))
			}
			rev++
		}
		// Keys above were generated unsorted; sort by key, stable so
		// versions keep their order.
		sortKeyRecords(recs)
		for i := range 50 {
			recs = append(recs, Record{Kind: KindLease, Lease: &Lease{ID: int64(i) - 25, TTL: int64(i)}})
		}
		recs[len(recs)-25].Lease.ID = math.MaxInt64
		for i := range 5 {
			recs = append(recs, Record{Kind: KindMember, Member: &Member{ID: uint64(i) + 1, Name: fmt.Sprintf("node-%d", i), PeerURLs: []string{"http://a:2380", "http://b:2380"}}})
		}
		return testMeta(rev, 0), recs
	}

	tests := []struct {
		name string
		gen  func() (Metadata, []Record)
	}{
		{"empty", func() (Metadata, []Record) { return Metadata{}, nil }},
		{"small", smallRecords},
		{"nil and empty keys are one key", func() (Metadata, []Record) {
			return testMeta(3, 1), []Record{
				keyRec(&KeyVersion{Key: nil, Value: []byte("v1"), CreateRevision: 1, ModRevision: 1, Version: 1}),
				keyRec(&KeyVersion{Key: []byte{}, Value: nil, CreateRevision: 1, ModRevision: 2, Version: 2}),
				keyRec(&KeyVersion{Key: []byte{0}, Value: []byte{}, CreateRevision: 3, ModRevision: 3, Version: 1}),
			}
		}},
		{"extreme values", func() (Metadata, []Record) {
			return testMeta(math.MaxInt64, 1), []Record{
				keyRec(&KeyVersion{Key: []byte("k"), CreateRevision: 1, ModRevision: math.MaxInt64, SubRevision: math.MaxInt64, Version: math.MaxInt64, Lease: math.MinInt64}),
				keyRec(&KeyVersion{Key: []byte("t"), ModRevision: math.MaxInt64, Tombstone: true, CreateRevision: math.MaxInt64 - 1, Version: 3, Lease: -1}),
				{Kind: KindLease, Lease: &Lease{ID: math.MinInt64, TTL: math.MaxInt64}},
				{Kind: KindLease, Lease: &Lease{ID: -1, TTL: 0}},
				{Kind: KindMember, Member: &Member{ID: math.MaxUint64, Name: "\xff\x00 ünï", ClientURLs: []string{""}, PeerURLs: []string{}}},
				{Kind: KindMember, Member: &Member{ID: 1}},
			}
		}},
		{"large values", func() (Metadata, []Record) {
			return testMeta(9, 3), []Record{
				keyRec(&KeyVersion{Key: big, Value: big, CreateRevision: 3, ModRevision: 3, Version: 1}),
				keyRec(&KeyVersion{Key: []byte("big"), Value: big, CreateRevision: 1, ModRevision: 1, Version: 1}),
				keyRec(&KeyVersion{Key: []byte("huge"), Value: huge, CreateRevision: 2, ModRevision: 2, Version: 1}),
			}
		}},
		{"many", many},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			meta, recs := tt.gen()
			data := encode(t, meta, recs)
			gotMeta, got, err := readAll(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			meta.Format = FormatVersion
			if !sameMeta(gotMeta, meta) {
				t.Errorf("metadata %+v, want %+v", gotMeta, meta)
			}
			if err := sameRecords(got, recs); err != nil {
				t.Fatal(err)
			}
			// Same again through a reader that returns one byte at a
			// time, to exercise every buffer boundary in the reader.
			if tt.name != "large values" {
				_, got, err = readAll(iotest.OneByteReader(bytes.NewReader(data)))
				if err != nil {
					t.Fatalf("one-byte read: %v", err)
				}
				if err := sameRecords(got, recs); err != nil {
					t.Fatalf("one-byte read: %v", err)
				}
			}
		})
	}
}

func sortKeyRecords(recs []Record) {
	// Stable, so the versions of a key keep their order.
	slices.SortStableFunc(recs, func(a, b Record) int { return bytes.Compare(a.Key.Key, b.Key.Key) })
}

// TestLayout pins the encoding: a file built by hand from the layout in
// format.go must read back, and the Writer must produce the same bytes.
func TestLayout(t *testing.T) {
	meta, recs := smallRecords()
	var body [][]byte
	for _, r := range recs {
		switch r.Kind {
		case KindKey:
			body = append(body, rawRecord(byte(KindKey), rawKey(*r.Key)))
		case KindLease:
			body = append(body, rawRecord(byte(KindLease), rawLease(r.Lease.ID, r.Lease.TTL)))
		case KindMember:
			body = append(body, rawRecord(byte(KindMember), rawMember(*r.Member)))
		}
	}
	want := rawFile(rawHeader(meta), body...)
	if got := smallFile(t); !bytes.Equal(got, want) {
		t.Fatalf("writer output differs from the documented layout:\n got %x\nwant %x", got, want)
	}
	if !bytes.HasPrefix(want, []byte("BRGSNAP\x01")) {
		t.Fatalf("magic changed")
	}
}

func TestWriter(t *testing.T) {
	var buf bytes.Buffer
	nc := &noClose{w: &buf}
	w, err := NewWriter(nc, Metadata{Revision: 5, KeyCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	before := w.Written()
	if before == 0 {
		t.Fatal("Written does not count the header")
	}
	if err := w.WriteKey(&KeyVersion{Key: []byte("k"), Value: []byte("v"), CreateRevision: 5, ModRevision: 5, Version: 1}); err != nil {
		t.Fatal(err)
	}
	if w.Written() <= before {
		t.Fatalf("Written did not grow: %d", w.Written())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if nc.closed {
		t.Fatal("Close closed the underlying writer")
	}
	if w.Written() != int64(buf.Len()) {
		t.Fatalf("Written %d, file is %d bytes", w.Written(), buf.Len())
	}
	meta, _, err := readAll(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if meta.Format != FormatVersion {
		t.Fatalf("format %d, want %d", meta.Format, FormatVersion)
	}
	n := buf.Len()
	for name, err := range map[string]error{
		"WriteKey":    w.WriteKey(&KeyVersion{Key: []byte("l"), CreateRevision: 5, ModRevision: 5, Version: 1}),
		"WriteLease":  w.WriteLease(&Lease{ID: 1}),
		"WriteMember": w.WriteMember(&Member{ID: 1}),
		"Close":       w.Close(),
	} {
		if err == nil {
			t.Errorf("%s after Close succeeded", name)
		}
	}
	if buf.Len() != n {
		t.Fatalf("writes after Close changed the output")
	}
}

type noClose struct {
	w      io.Writer
	closed bool
}

func (n *noClose) Write(p []byte) (int, error) { return n.w.Write(p) }
func (n *noClose) Close() error                { n.closed = true; return nil }

func TestWriterRejects(t *testing.T) {
	okKey := func() *KeyVersion {
		return &KeyVersion{Key: []byte("k"), Value: []byte("v"), CreateRevision: 2, ModRevision: 3, Version: 2}
	}
	tests := []struct {
		name  string
		meta  Metadata
		write func(w *Writer) error
	}{
		{"meta format too new", Metadata{Format: FormatVersion + 1, Revision: 5}, nil},
		{"meta negative format", Metadata{Format: -1, Revision: 5}, nil},
		{"meta negative revision", Metadata{Revision: -1}, nil},
		{"meta compact after revision", Metadata{Revision: 5, CompactRevision: 6}, nil},
		{"meta negative key count", Metadata{Revision: 5, KeyCount: -1}, nil},
		{"meta huge header", Metadata{Revision: 5, BargeVersion: strings.Repeat("x", maxHeaderBytes)}, nil},
		{"nil key version", Metadata{Revision: 5}, func(w *Writer) error { return w.WriteKey(nil) }},
		{"nil lease", Metadata{Revision: 5}, func(w *Writer) error { return w.WriteLease(nil) }},
		{"nil member", Metadata{Revision: 5}, func(w *Writer) error { return w.WriteMember(nil) }},
		{"mod revision 0", Metadata{Revision: 5}, func(w *Writer) error {
			kv := okKey()
			kv.ModRevision, kv.CreateRevision = 0, 0
			return w.WriteKey(kv)
		}},
		{"mod revision after snapshot", Metadata{Revision: 2}, func(w *Writer) error { return w.WriteKey(okKey()) }},
		{"create after mod", Metadata{Revision: 5}, func(w *Writer) error {
			kv := okKey()
			kv.CreateRevision = 4
			return w.WriteKey(kv)
		}},
		{"live create 0", Metadata{Revision: 5}, func(w *Writer) error {
			kv := okKey()
			kv.CreateRevision = 0
			return w.WriteKey(kv)
		}},
		{"negative version", Metadata{Revision: 5}, func(w *Writer) error {
			kv := okKey()
			kv.Version = -1
			return w.WriteKey(kv)
		}},
		{"negative sub revision", Metadata{Revision: 5}, func(w *Writer) error {
			kv := okKey()
			kv.SubRevision = -1
			return w.WriteKey(kv)
		}},
		{"tombstone with value", Metadata{Revision: 5}, func(w *Writer) error {
			kv := okKey()
			kv.Tombstone = true
			return w.WriteKey(kv)
		}},
		{"keys out of order", Metadata{Revision: 5}, func(w *Writer) error {
			kv := okKey()
			if err := w.WriteKey(kv); err != nil {
				return nil // fail the test: the first write must succeed
			}
			kv.Key = []byte("j")
			return w.WriteKey(kv)
		}},
		{"versions out of order", Metadata{Revision: 5}, func(w *Writer) error {
			kv := okKey()
			if err := w.WriteKey(kv); err != nil {
				return nil
			}
			kv.ModRevision--
			return w.WriteKey(kv)
		}},
		{"duplicate version", Metadata{Revision: 5}, func(w *Writer) error {
			if err := w.WriteKey(okKey()); err != nil {
				return nil
			}
			return w.WriteKey(okKey())
		}},
		{"lease ID 0", Metadata{Revision: 5}, func(w *Writer) error { return w.WriteLease(&Lease{ID: 0, TTL: 5}) }},
		{"negative TTL", Metadata{Revision: 5}, func(w *Writer) error { return w.WriteLease(&Lease{ID: 1, TTL: -5}) }},
		{"member ID 0", Metadata{Revision: 5}, func(w *Writer) error { return w.WriteMember(&Member{Name: "x"}) }},
		{"record too large", Metadata{Revision: 5}, func(w *Writer) error {
			kv := okKey()
			kv.Value = make([]byte, maxRecordBytes)
			return w.WriteKey(kv)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := NewWriter(&buf, tt.meta)
			if tt.write == nil {
				if err == nil {
					t.Fatal("NewWriter accepted invalid metadata")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.write(w); err == nil {
				t.Fatal("write succeeded")
			}
			// The writer is broken now: a half snapshot must not be
			// completed into a valid-looking file.
			if err := w.Close(); err == nil {
				t.Fatal("Close after a rejected record succeeded")
			}
		})
	}
}

func TestWriterErrors(t *testing.T) {
	meta, recs := smallRecords()
	size := len(smallFile(t))
	for limit := 0; limit < size; limit++ {
		fw := &failWriter{limit: limit}
		w, err := NewWriter(fw, meta)
		if err == nil {
			for _, rec := range recs {
				if err = writeRecord(w, rec); err != nil {
					break
				}
			}
			if err == nil {
				err = w.Close()
			}
			if err == nil {
				t.Fatalf("limit %d: no error from a writer that fails", limit)
			}
			if err2 := w.Close(); err2 == nil {
				t.Fatalf("limit %d: second Close succeeded after %v", limit, err)
			}
		}
		if !errors.Is(err, errFail) {
			t.Fatalf("limit %d: error %v does not wrap the writer's", limit, err)
		}
	}
}

var errFail = errors.New("disk full")

type failWriter struct{ n, limit int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n+len(p) > f.limit {
		n := f.limit - f.n
		f.n = f.limit
		return n, errFail
	}
	f.n += len(p)
	return len(p), nil
}

func TestTruncated(t *testing.T) {
	data := smallFile(t)
	for i := range len(data) {
		_, _, err := readAll(bytes.NewReader(data[:i]))
		want := ErrTruncated
		if i == 0 {
			want = ErrNotSnapshot
		}
		if !errors.Is(err, want) {
			t.Fatalf("cut at %d of %d: error %v, want %v", i, len(data), err, want)
		}
		if _, _, verr := Verify(bytes.NewReader(data[:i])); !errors.Is(verr, want) {
			t.Fatalf("Verify cut at %d: error %v, want %v", i, verr, want)
		}
	}
	_, _, err := readAll(bytes.NewReader(data[:len(data)-5]))
	if !strings.Contains(err.Error(), fmt.Sprint("offset ", len(data)-5)) {
		t.Errorf("error %q does not say where the input ended", err)
	}
}

func TestFlippedBytes(t *testing.T) {
	data := smallFile(t)
	allowed := []error{ErrNotSnapshot, ErrUnsupportedFormat, ErrTruncated, ErrChecksum, ErrCorrupt}
	counts := map[error]int{}
	for i := range data {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(data)
			bad[i] ^= mask
			_, _, err := readAll(bytes.NewReader(bad))
			if err == nil {
				t.Fatalf("byte %d ^ %#x went unnoticed", i, mask)
			}
			found := false
			for _, a := range allowed {
				if errors.Is(err, a) {
					counts[a]++
					found = true
				}
			}
			if !found {
				t.Fatalf("byte %d ^ %#x: error %v wraps no sentinel", i, mask, err)
			}
		}
	}
	t.Logf("detected as: %v", counts)
}

func TestForeignFiles(t *testing.T) {
	// The first bytes of a bbolt database (what etcd's snapshot save
	// writes): page id 0, meta page flag, then the bbolt magic.
	bolt := make([]byte, 4096)
	binary.LittleEndian.PutUint16(bolt[8:], 0x04)
	binary.LittleEndian.PutUint32(bolt[16:], 0xED0CDAED)
	binary.LittleEndian.PutUint32(bolt[20:], 2)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(smallFile(t))
	zw.Close()

	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrNotSnapshot},
		{"bbolt", bolt, ErrNotSnapshot},
		{"text", []byte("hello, world\n"), ErrNotSnapshot},
		{"one byte", []byte("h"), ErrNotSnapshot},
		{"json", []byte(`{"format":1,"revision":5}`), ErrNotSnapshot},
		{"gzipped snapshot", gz.Bytes(), ErrNotSnapshot},
		{"zeros", make([]byte, 100), ErrNotSnapshot},
		{"magic prefix only", []byte("BRGSN"), ErrTruncated},
		{"magic without version byte", []byte("BRGSNAP"), ErrTruncated},
		{"magic of a future layout", append([]byte("BRGSNAP\x02"), smallFile(t)[8:]...), ErrUnsupportedFormat},
		{"magic of version 0", append([]byte("BRGSNAP\x00"), smallFile(t)[8:]...), ErrUnsupportedFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := readAll(bytes.NewReader(tt.data))
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if tt.want == ErrNotSnapshot && !strings.Contains(err.Error(), "not a barge snapshot file") {
				t.Fatalf("error %q does not say what is wrong", err)
			}
		})
	}
}

func TestTrailingGarbage(t *testing.T) {
	data := smallFile(t)
	for name, extra := range map[string][]byte{
		"newline":       []byte("\n"),
		"zero":          {0},
		"second copy":   data,
		"another magic": []byte(magic),
	} {
		t.Run(name, func(t *testing.T) {
			_, recs, err := readAll(bytes.NewReader(append(bytes.Clone(data), extra...)))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "after the checksum") {
				t.Fatalf("error %v, want ErrCorrupt about bytes after the checksum", err)
			}
			if len(recs) != 7 {
				t.Fatalf("%d records before the error, want 7", len(recs))
			}
		})
	}
}

// TestCorrupt feeds files whose checksum is valid, so only the structural
// checks stand between the bytes and the store.
func TestCorrupt(t *testing.T) {
	meta := testMeta(10, 1)
	hdr := rawHeader(meta)
	kv := func(mod func(*KeyVersion)) []byte {
		k := KeyVersion{Key: []byte("k"), Value: []byte("v"), CreateRevision: 2, ModRevision: 3, Version: 2}
		mod(&k)
		return rawRecord(byte(KindKey), rawKey(k))
	}
	good := kv(func(*KeyVersion) {})
	withHeader := func(h string) []byte { return rawFile([]byte(h), good) }
	headerLen := func(n uint32) []byte {
		return binary.BigEndian.AppendUint32([]byte(magic), n)
	}
	metaWith := func(mod func(*Metadata)) []byte {
		m := meta
		mod(&m)
		return rawFile(rawHeader(m), good)
	}
	withPayload := func(kind byte, payload []byte) []byte {
		return rawFile(hdr, rawRecord(kind, payload))
	}
	goodLen := len(rawKey(KeyVersion{Key: []byte("k"), Value: []byte("v"), CreateRevision: 2, ModRevision: 3, Version: 2}))

	tests := []struct {
		name string
		data []byte
		want error
		msg  string // must appear in the error
	}{
		{"valid", rawFile(hdr, good), nil, ""},
		{"unknown header fields", withHeader(`{"format":1,"revision":10,"keyCount":1,"newField":[1,2]}`), nil, ""},
		{"header length 0", rawFile(nil, good), ErrCorrupt, "header length 0"},
		{"header length huge", headerLen(math.MaxUint32), ErrCorrupt, "header length"},
		{"header length just too big", headerLen(maxHeaderBytes + 1), ErrCorrupt, "header length"},
		{"header not json", withHeader(`format=1`), ErrCorrupt, "header"},
		{"header trailing json", withHeader(`{"format":1,"revision":10}{}`), ErrCorrupt, "header"},
		{"header null", withHeader(`null`), ErrCorrupt, "format 0"},
		{"header array", withHeader(`[1]`), ErrCorrupt, "header"},
		{"header wrong type", withHeader(`{"format":1,"revision":"10"}`), ErrCorrupt, "header"},
		{"header bad time", withHeader(`{"format":1,"revision":10,"createdAt":"yesterday"}`), ErrCorrupt, "header"},
		{"header format too new", withHeader(`{"format":2,"revision":10,"createdAt":17}`), ErrUnsupportedFormat, "format 2"},
		{"header format huge", withHeader(`{"format":9007199254740993}`), ErrUnsupportedFormat, "format"},
		{"header format 0", metaWith(func(m *Metadata) { m.Format = -1 }), ErrCorrupt, "format -1"},
		{"header negative revision", metaWith(func(m *Metadata) { m.Revision, m.CompactRevision = -1, 0 }), ErrCorrupt, "negative revision"},
		{"header compact after revision", metaWith(func(m *Metadata) { m.CompactRevision = 11 }), ErrCorrupt, "compact revision 11"},
		{"header negative key count", metaWith(func(m *Metadata) { m.KeyCount = -1 }), ErrCorrupt, "key count"},
		{"kind 0", withPayload(0, rawKey(KeyVersion{Key: []byte("k"), CreateRevision: 1, ModRevision: 1})), ErrCorrupt, "record 1 at offset"},
		{"kind 4", withPayload(4, []byte{0}), ErrCorrupt, "unknown record kind 0x04"},
		{"kind 0xfe", withPayload(0xfe, []byte{0}), ErrCorrupt, "unknown record kind"},
		{"second record unknown", rawFile(hdr, good, []byte{9}), ErrCorrupt, "record 2 at offset"},
		{"length 0", rawFile(hdr, []byte{byte(KindKey), 0}), ErrCorrupt, "length 0"},
		{"length over the cap", rawFile(hdr, binary.AppendUvarint([]byte{byte(KindKey)}, maxRecordBytes+1)), ErrCorrupt, "length 67108865"},
		{"length overflows", rawFile(hdr, []byte{byte(KindKey), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}), ErrCorrupt, "overflows"},
		{"length not minimal", rawFile(hdr, append([]byte{byte(KindKey), 0x80 | byte(goodLen), 0}, good[2:]...)), ErrCorrupt, "minimal"},
		{"payload left over", withPayload(byte(KindLease), append(rawLease(1, 2), 0)), ErrCorrupt, "1 bytes left over"},
		{"key longer than payload", withPayload(byte(KindKey), []byte{5, 'k'}), ErrCorrupt, "key of 5 bytes"},
		{"value longer than payload", withPayload(byte(KindKey), []byte{1, 'k', 9, 'v'}), ErrCorrupt, "value of 9 bytes"},
		{"payload ends in a varint", withPayload(byte(KindKey), []byte{1, 'k', 0, 0x80}), ErrCorrupt, "create revision"},
		{"payload varint not minimal", withPayload(byte(KindLease), []byte{0x82, 0x00, 2}), ErrCorrupt, "minimal"},
		{"payload varint overflows", withPayload(byte(KindLease), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 2}), ErrCorrupt, "overflows"},
		{"key without flags", withPayload(byte(KindKey), rawKey(KeyVersion{Key: []byte("k"), CreateRevision: 1, ModRevision: 1})[:8]), ErrCorrupt, "before the flags"},
		{"unknown key flag", withPayload(byte(KindKey), append(rawKey(KeyVersion{Key: []byte("k"), CreateRevision: 1, ModRevision: 1, Version: 1})[:8], 2)), ErrCorrupt, "unknown flags 0x02"},
		{"mod revision 0", kv2(hdr, func(k *KeyVersion) { k.ModRevision, k.CreateRevision = 0, 0 }), ErrCorrupt, "mod revision 0"},
		{"mod revision after snapshot", kv2(hdr, func(k *KeyVersion) { k.ModRevision = 11 }), ErrCorrupt, "mod revision 11 outside 1..10"},
		{"create after mod", kv2(hdr, func(k *KeyVersion) { k.CreateRevision = 4 }), ErrCorrupt, "create revision 4 after"},
		{"live create 0", kv2(hdr, func(k *KeyVersion) { k.CreateRevision = 0 }), ErrCorrupt, "create revision 0"},
		{"negative version", kv2(hdr, func(k *KeyVersion) { k.Version = -1 }), ErrCorrupt, "negative version"},
		{"negative sub revision", kv2(hdr, func(k *KeyVersion) { k.SubRevision = -1 }), ErrCorrupt, "negative sub revision"},
		{"tombstone with value", kv2(hdr, func(k *KeyVersion) { k.Tombstone = true }), ErrCorrupt, "tombstone"},
		{"tombstone negative create", kv2(hdr, func(k *KeyVersion) { k.Tombstone, k.Value, k.CreateRevision = true, nil, -1 }), ErrCorrupt, "negative create"},
		{"keys out of order", rawFile(hdr, kv(func(k *KeyVersion) { k.Key = []byte("z") }), good), ErrCorrupt, "record 2 at offset"},
		{"versions out of order", rawFile(hdr, good, kv(func(k *KeyVersion) { k.ModRevision = 2 })), ErrCorrupt, "versions out of order"},
		{"sub revisions out of order", rawFile(hdr, kv(func(k *KeyVersion) { k.SubRevision = 1 }), good), ErrCorrupt, "versions out of order"},
		{"duplicate version", rawFile(hdr, good, good), ErrCorrupt, "versions out of order"},
		{"lease ID 0", withPayload(byte(KindLease), rawLease(0, 5)), ErrCorrupt, "lease ID 0"},
		{"lease negative TTL", withPayload(byte(KindLease), rawLease(7, -5)), ErrCorrupt, "negative TTL"},
		{"lease truncated payload", withPayload(byte(KindLease), rawLease(7, 5)[:1]), ErrCorrupt, "lease TTL"},
		{"member ID 0", withPayload(byte(KindMember), rawMember(Member{Name: "x"})), ErrCorrupt, "ID 0"},
		{"member URL count huge", withPayload(byte(KindMember), append(rawMember(Member{ID: 1})[:2], 0xff, 0xff, 0xff, 0xff, 0x0f)), ErrCorrupt, "client URLs"},
		{"member URL cut", withPayload(byte(KindMember), append(rawMember(Member{ID: 1})[:2], 1, 5, 'h')), ErrCorrupt, "client URL of 5 bytes"},
		{"end marker only, checksum wrong", func() []byte {
			b := rawFile(hdr)
			b[len(b)-1] ^= 1
			return b
		}(), ErrChecksum, "checksum"},
		{"no end marker", func() []byte {
			b := rawFile(hdr, good)
			return b[:len(b)-33]
		}(), ErrTruncated, "before the end marker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := readAll(bytes.NewReader(tt.data))
			t.Log(err)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %q does not mention %q", err, tt.msg)
			}
		})
	}
}

func kv2(hdr []byte, mod func(*KeyVersion)) []byte {
	k := KeyVersion{Key: []byte("k"), Value: []byte("v"), CreateRevision: 2, ModRevision: 3, Version: 2}
	mod(&k)
	return rawFile(hdr, rawRecord(byte(KindKey), rawKey(k)))
}

// TestBoundedAllocation checks that lengths claimed by a short input do
// not turn into allocations.
func TestBoundedAllocation(t *testing.T) {
	hdr := rawHeader(testMeta(10, 0))
	claim := func(n uint64) []byte {
		b := []byte(magic)
		b = binary.BigEndian.AppendUint32(b, uint32(len(hdr)))
		b = append(b, hdr...)
		b = binary.AppendUvarint(append(b, byte(KindKey)), n)
		return append(b, make([]byte, 1000)...)
	}
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"record at the cap", claim(maxRecordBytes), ErrTruncated},
		{"record over the cap", claim(maxRecordBytes + 1), ErrCorrupt},
		{"record of 2^63", claim(1 << 63), ErrCorrupt},
		{"header at the cap", binary.BigEndian.AppendUint32([]byte(magic), maxHeaderBytes), ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, _, err := readAll(bytes.NewReader(tt.data))
			runtime.ReadMemStats(&after)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			// The header cap itself is 1 MiB; anything near the claimed
			// record sizes would be tens of MiB.
			if got := after.TotalAlloc - before.TotalAlloc; got > 2<<20+inputBufSize {
				t.Fatalf("allocated %d bytes for a %d-byte input", got, len(tt.data))
			}
		})
	}
}

func TestReaderSources(t *testing.T) {
	data := smallFile(t)
	_, want, err := readAll(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()

	tests := []struct {
		name string
		r    func() io.Reader
		want error // nil: reads cleanly
	}{
		{"half reads", func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) }, nil},
		{"data with EOF", func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) }, nil},
		{"gzip", func() io.Reader { zr, _ := gzip.NewReader(bytes.NewReader(gz.Bytes())); return zr }, nil},
		{"truncated gzip", func() io.Reader {
			zr, _ := gzip.NewReader(bytes.NewReader(gz.Bytes()[:gz.Len()*2/3]))
			return zr
		}, ErrTruncated},
		{"read error", func() io.Reader { return io.MultiReader(bytes.NewReader(data[:50]), iotest.ErrReader(errFail)) }, errFail},
		{"timeout", func() io.Reader { return iotest.TimeoutReader(bytes.NewReader(data)) }, iotest.ErrTimeout},
		{"no progress", func() io.Reader { return io.MultiReader(bytes.NewReader(data[:60]), zeroReader{}) }, io.ErrNoProgress},
		{"no progress after the checksum", func() io.Reader { return io.MultiReader(bytes.NewReader(data), zeroReader{}) }, io.ErrNoProgress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got, err := readAll(tt.r())
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if err := sameRecords(got, want); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestReaderSticky(t *testing.T) {
	data := smallFile(t)
	sr, err := NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err = sr.Next(); err != nil {
			break
		}
	}
	for range 3 {
		if _, err := sr.Next(); err != io.EOF {
			t.Fatalf("Next after EOF: %v", err)
		}
	}
	bad := bytes.Clone(data)
	bad[len(bad)-1] ^= 1
	sr, err = NewReader(bytes.NewReader(bad))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err = sr.Next(); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("error %v, want ErrChecksum", err)
	}
	if _, err2 := sr.Next(); err2 != err {
		t.Fatalf("Next after error returned %v, want %v", err2, err)
	}
}

// TestRecordsIndependent checks that records do not share memory: the
// store keeps Key and Value slices after the reader moves on.
func TestRecordsIndependent(t *testing.T) {
	_, recs, err := readAll(bytes.NewReader(smallFile(t)))
	if err != nil {
		t.Fatal(err)
	}
	k := recs[1].Key
	k.Key = append(k.Key, "xyz"...)
	if string(k.Value) != "1" {
		t.Fatalf("appending to Key changed Value to %q", k.Value)
	}
	_, again, _ := readAll(bytes.NewReader(smallFile(t)))
	_, orig := smallRecords()
	if err := sameRecords(again, orig); err != nil {
		t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	live := func(key string, mod int64) Record {
		return keyRec(&KeyVersion{Key: []byte(key), Value: []byte("v"), CreateRevision: 1, ModRevision: mod, Version: 1})
	}
	dead := func(key string, mod int64) Record {
		return keyRec(&KeyVersion{Key: []byte(key), ModRevision: mod, Tombstone: true})
	}
	tests := []struct {
		name     string
		keyCount int64
		recs     []Record
		want     Stats // Bytes is filled in
		err      error
		msg      string
	}{
		{"empty", 0, nil, Stats{}, nil, ""},
		{"small", 3, func() []Record { _, r := smallRecords(); return r }(), Stats{KeyVersions: 5, LiveKeys: 3, Leases: 1, Members: 1}, nil, ""},
		{"live, deleted, recreated", 3, []Record{
			live("", 1), live("a", 2), live("b", 2), dead("b", 3), dead("c", 3), live("c", 4), dead("d", 5), live("e", 6),
		}, Stats{KeyVersions: 8, LiveKeys: 4}, ErrCorrupt, "promises 3 live keys, the records hold 4"},
		{"only tombstones", 0, []Record{dead("a", 2), dead("b", 3)}, Stats{KeyVersions: 2}, nil, ""},
		{"last key deleted", 1, []Record{live("a", 2), live("b", 3), dead("b", 4)}, Stats{KeyVersions: 3, LiveKeys: 1}, nil, ""},
		{"duplicate lease", 0, []Record{
			{Kind: KindLease, Lease: &Lease{ID: 5, TTL: 1}}, {Kind: KindMember, Member: &Member{ID: 5}}, {Kind: KindLease, Lease: &Lease{ID: 5, TTL: 2}},
		}, Stats{Leases: 2, Members: 1}, ErrCorrupt, "record 3: lease 5 appears twice"},
		{"duplicate member", 0, []Record{
			{Kind: KindMember, Member: &Member{ID: 5}}, {Kind: KindMember, Member: &Member{ID: 5, Name: "again"}},
		}, Stats{Members: 2}, ErrCorrupt, "member 5 appears twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			meta := testMeta(10, tt.keyCount)
			data := encode(t, meta, tt.recs)
			gotMeta, st, err := Verify(bytes.NewReader(data))
			if tt.err == nil && err != nil {
				t.Fatal(err)
			}
			if tt.err != nil && (!errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.msg)) {
				t.Fatalf("error %v, want %v mentioning %q", err, tt.err, tt.msg)
			}
			if err == nil {
				tt.want.Bytes = int64(len(data))
			} else {
				st.Bytes = 0
			}
			if st != tt.want {
				t.Fatalf("stats %+v, want %+v", st, tt.want)
			}
			meta.Format = FormatVersion
			if !sameMeta(gotMeta, meta) {
				t.Fatalf("metadata %+v, want %+v", gotMeta, meta)
			}
		})
	}
}
