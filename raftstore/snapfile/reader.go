package snapfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
)

// Reader decodes a snapshot. Records are returned as they are read, but
// the checksum is only known at the end: consumers must stage what they
// read and commit only after Next has returned io.EOF.
//
// The Reader trusts nothing it reads: lengths are capped and memory grows
// only with bytes actually received, so a hostile or damaged stream costs
// at most about one record's worth of memory before it is rejected.
type Reader struct {
	in    input
	meta  Metadata
	order keyOrder
	n     int // records returned so far
	err   error
}

// NewReader reads and checks the magic and the header.
func NewReader(r io.Reader) (*Reader, error) {
	sr := &Reader{}
	sr.in.init(r)
	if err := sr.readMagic(); err != nil {
		return nil, err
	}
	var lb [4]byte
	if err := sr.in.readFull(lb[:]); err != nil {
		return nil, sr.readErr(err, "header length")
	}
	hl := binary.BigEndian.Uint32(lb[:])
	if hl == 0 || hl > maxHeaderBytes {
		return nil, fmt.Errorf("%w: header length %d at offset %d, want 1..%d", ErrCorrupt, hl, len(magic), maxHeaderBytes)
	}
	hdr, err := sr.in.readPayload(int(hl))
	if err != nil {
		return nil, sr.readErr(err, "header")
	}
	// The format is looked at alone first: a newer header may change
	// other fields in ways this version cannot parse, and "too new" is the
	// more useful report then.
	var probe struct {
		Format int `json:"format"`
	}
	if json.Unmarshal(hdr, &probe) == nil && probe.Format > FormatVersion {
		return nil, fmt.Errorf("%w: header says format %d, this barge reads up to %d", ErrUnsupportedFormat, probe.Format, FormatVersion)
	}
	// Unknown fields are allowed: a newer barge may add informational
	// fields without changing the record layout, which Format versions.
	if err := json.Unmarshal(hdr, &sr.meta); err != nil {
		return nil, fmt.Errorf("%w: header at offset %d: %v", ErrCorrupt, len(magic)+4, err)
	}
	if err := checkMetadata(&sr.meta); err != nil {
		return nil, fmt.Errorf("%w: header at offset %d: %v", ErrCorrupt, len(magic)+4, err)
	}
	return sr, nil
}

func (r *Reader) readMagic() error {
	var m [len(magic)]byte
	err := r.in.readFull(m[:])
	got := m[:r.in.offset()]
	switch {
	case len(got) == 0 && isEOF(err):
		return fmt.Errorf("%w: the input is empty", ErrNotSnapshot)
	case !bytes.HasPrefix([]byte(magic[:len(magic)-1]), got) && !bytes.HasPrefix(got, []byte(magic[:len(magic)-1])):
		return fmt.Errorf("%w: it starts with %q", ErrNotSnapshot, got)
	case err != nil:
		return r.readErr(err, "magic")
	case string(got) != magic:
		// The last magic byte is reserved for a layout change so drastic
		// that even the header could not be read.
		return fmt.Errorf("%w: magic version byte %d, this barge reads %d", ErrUnsupportedFormat, got[len(got)-1], magic[len(magic)-1])
	}
	return nil
}

// Metadata returns the header.
func (r *Reader) Metadata() Metadata { return r.meta }

// readErr turns an input error into one that says what was being read and
// where the input stopped.
func (r *Reader) readErr(err error, what string) error {
	if isEOF(err) {
		return fmt.Errorf("%w: input ends at offset %d inside the %s", ErrTruncated, r.in.offset(), what)
	}
	return fmt.Errorf("snapfile: read %s at offset %d: %w", what, r.in.offset(), err)
}

func isEOF(err error) bool {
	// A decompressor under us reports a cut stream as ErrUnexpectedEOF.
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// Next returns the next record, or io.EOF once the end marker and a
// matching checksum have been read and nothing follows them. After any
// other error the Reader is done and keeps returning that error.
func (r *Reader) Next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	rec, err := r.next()
	if err != nil {
		r.err = err
		return Record{}, err
	}
	r.n++
	return rec, nil
}

func (r *Reader) next() (Record, error) {
	start := r.in.offset()
	where := func() string { return fmt.Sprintf("record %d at offset %d", r.n+1, start) }
	kind, err := r.in.readByte()
	if err != nil {
		if isEOF(err) {
			return Record{}, fmt.Errorf("%w: input ends at offset %d after %d records, before the end marker", ErrTruncated, start, r.n)
		}
		return Record{}, fmt.Errorf("snapfile: read %s: %w", where(), err)
	}
	switch RecordKind(kind) {
	case KindKey, KindLease, KindMember:
	case kindEnd:
		return Record{}, r.finish(start)
	default:
		return Record{}, fmt.Errorf("%w: %s: unknown record kind %#02x", ErrCorrupt, where(), kind)
	}
	size, err := r.in.readUvarint()
	if err != nil {
		if errors.Is(err, errBadVarint) {
			return Record{}, fmt.Errorf("%w: %s: length: %v", ErrCorrupt, where(), err)
		}
		return Record{}, r.recordReadErr(err, where())
	}
	if size == 0 || size > maxRecordBytes {
		return Record{}, fmt.Errorf("%w: %s: length %d outside 1..%d", ErrCorrupt, where(), size, maxRecordBytes)
	}
	payload, err := r.in.readPayload(int(size))
	if err != nil {
		return Record{}, r.recordReadErr(err, where())
	}
	// Key and Value alias payload, so each record costs one allocation
	// for its bytes and nothing is shared between records.
	p := payloadReader{b: payload}
	rec := Record{Kind: RecordKind(kind)}
	switch rec.Kind {
	case KindKey:
		rec.Key, err = p.key()
		if err == nil {
			err = checkKey(rec.Key, r.meta.Revision)
		}
		if err == nil {
			err = r.order.check(rec.Key)
		}
	case KindLease:
		rec.Lease, err = p.lease()
		if err == nil {
			err = checkLease(rec.Lease)
		}
	case KindMember:
		rec.Member, err = p.member()
		if err == nil {
			err = checkMember(rec.Member)
		}
	}
	if err == nil && len(p.b) != 0 {
		err = fmt.Errorf("%d bytes left over in the payload", len(p.b))
	}
	if err != nil {
		return Record{}, fmt.Errorf("%w: %s: %v", ErrCorrupt, where(), err)
	}
	return rec, nil
}

func (r *Reader) recordReadErr(err error, where string) error {
	if isEOF(err) {
		return fmt.Errorf("%w: input ends at offset %d inside %s", ErrTruncated, r.in.offset(), where)
	}
	return fmt.Errorf("snapfile: read %s: %w", where, err)
}

// finish checks the trailer after the end marker at offset end.
func (r *Reader) finish(end int64) error {
	want := r.in.stopHashing()
	var got [sha256.Size]byte
	if err := r.in.readFull(got[:]); err != nil {
		return r.readErr(err, "checksum")
	}
	if !bytes.Equal(got[:], want) {
		return fmt.Errorf("%w: after %d records, the checksum at offset %d is %x but the content hashes to %x", ErrChecksum, r.n, end+1, got, want)
	}
	// Trailing bytes mean the file is not what the writer produced
	// (two snapshots concatenated, say), so it is not trusted either.
	off := r.in.offset()
	if _, err := r.in.readByte(); err == nil {
		return fmt.Errorf("%w: unexpected bytes after the checksum at offset %d", ErrCorrupt, off)
	} else if !errors.Is(err, io.EOF) {
		return fmt.Errorf("snapfile: read past the checksum at offset %d: %w", off, err)
	}
	return io.EOF
}

// input is a buffered reader that hashes exactly the bytes consumed.
// bufio.Reader would read ahead past the checksum, and hashing each small
// read separately is several times slower than hashing whole buffers.
type input struct {
	r      io.Reader
	buf    []byte
	pos    int   // next unconsumed byte in buf
	end    int   // end of valid data in buf
	hashed int   // buf[:hashed] has been fed to sum
	base   int64 // stream offset of buf[0]
	sum    hash.Hash
	err    error // sticky error from r, reported once buf is drained
}

const inputBufSize = 256 << 10

func (in *input) init(r io.Reader) {
	in.r = r
	in.buf = make([]byte, inputBufSize)
	in.sum = sha256.New()
}

func (in *input) offset() int64 { return in.base + int64(in.pos) }

// fill discards consumed bytes and reads more; it returns an error only
// when nothing was added.
func (in *input) fill() error {
	if in.sum != nil {
		in.sum.Write(in.buf[in.hashed:in.pos])
	}
	n := copy(in.buf, in.buf[in.pos:in.end])
	in.base += int64(in.pos)
	in.pos, in.end, in.hashed = 0, n, 0
	if in.err != nil {
		return in.err
	}
	// Like bufio, give up on a reader that keeps returning nothing.
	for range 100 {
		m, err := in.r.Read(in.buf[in.end:])
		if m < 0 || m > len(in.buf)-in.end {
			in.err = fmt.Errorf("reader returned an invalid count %d", m)
			return in.err
		}
		in.end += m
		if err != nil {
			in.err = err
		}
		if m > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	in.err = io.ErrNoProgress
	return in.err
}

func (in *input) readByte() (byte, error) {
	if in.pos == in.end {
		if err := in.fill(); err != nil {
			return 0, err
		}
	}
	b := in.buf[in.pos]
	in.pos++
	return b, nil
}

// readFull fills p, or returns io.EOF if the input ends first.
func (in *input) readFull(p []byte) error {
	for len(p) > 0 {
		if in.pos == in.end {
			if err := in.fill(); err != nil {
				return err
			}
		}
		n := copy(p, in.buf[in.pos:in.end])
		in.pos += n
		p = p[n:]
	}
	return nil
}

var errBadVarint = errors.New("bad varint")

// readUvarint reads a minimally encoded uvarint.
func (in *input) readUvarint() (uint64, error) {
	var x uint64
	for i := 0; ; i++ {
		b, err := in.readByte()
		if err != nil {
			return 0, err
		}
		if i == binary.MaxVarintLen64-1 && b > 1 {
			return 0, fmt.Errorf("%w: overflows 64 bits", errBadVarint)
		}
		if b < 0x80 {
			if b == 0 && i > 0 {
				return 0, fmt.Errorf("%w: not minimally encoded", errBadVarint)
			}
			return x | uint64(b)<<(7*i), nil
		}
		x |= uint64(b&0x7f) << (7 * i)
	}
}

// readPayload reads n bytes into a new slice. The slice grows with the
// bytes that actually arrive, so a length that lies about a short stream
// cannot make us allocate what is not there.
func (in *input) readPayload(n int) ([]byte, error) {
	// Most records are small and get one exact allocation.
	p := make([]byte, 0, min(n, 64<<10))
	for len(p) < n {
		if in.pos == in.end {
			if err := in.fill(); err != nil {
				return nil, err
			}
		}
		take := min(n-len(p), in.end-in.pos)
		if len(p)+take > cap(p) {
			// Double, as append would, but never past n: Key and Value
			// alias this slice, so slack would live as long as they do.
			np := make([]byte, len(p), min(n, max(2*cap(p), len(p)+take)))
			copy(np, p)
			p = np
		}
		p = append(p, in.buf[in.pos:in.pos+take]...)
		in.pos += take
	}
	return p, nil
}

// stopHashing returns the hash of everything consumed so far; bytes read
// after it are not hashed.
func (in *input) stopHashing() []byte {
	in.sum.Write(in.buf[in.hashed:in.pos])
	in.hashed = in.pos
	s := in.sum.Sum(nil)
	in.sum = nil
	return s
}

// payloadReader decodes one record's payload.
type payloadReader struct{ b []byte }

func (p *payloadReader) uvarint() (uint64, error) {
	v, n := binary.Uvarint(p.b)
	switch {
	case n == 0:
		return 0, errors.New("payload ends inside a varint")
	case n < 0:
		return 0, errors.New("varint overflows 64 bits")
	case n > 1 && p.b[n-1] == 0:
		return 0, errors.New("varint not minimally encoded")
	}
	p.b = p.b[n:]
	return v, nil
}

func (p *payloadReader) varint() (int64, error) {
	// Zig-zag on top of the uvarint, as binary.Varint does, so the
	// minimal-encoding check applies to signed fields too.
	ux, err := p.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x, err
}

// bytes returns the next length-prefixed field, aliasing the payload, or
// nil if it is empty.
func (p *payloadReader) bytes(what string) ([]byte, error) {
	l, err := p.uvarint()
	if err != nil {
		return nil, fmt.Errorf("%s length: %v", what, err)
	}
	if l > uint64(len(p.b)) {
		return nil, fmt.Errorf("%s of %d bytes, only %d left in the payload", what, l, len(p.b))
	}
	if l == 0 {
		return nil, nil
	}
	// Cap the slice so a caller appending to Key cannot overwrite Value.
	out := p.b[:l:l]
	p.b = p.b[l:]
	return out, nil
}

func (p *payloadReader) ints(what []string, dst ...*int64) error {
	for i, d := range dst {
		v, err := p.varint()
		if err != nil {
			return fmt.Errorf("%s: %v", what[i], err)
		}
		*d = v
	}
	return nil
}

var keyFields = []string{"create revision", "mod revision", "sub revision", "version", "lease"}

func (p *payloadReader) key() (*KeyVersion, error) {
	kv := &KeyVersion{}
	var err error
	if kv.Key, err = p.bytes("key"); err != nil {
		return nil, err
	}
	if kv.Value, err = p.bytes("value"); err != nil {
		return nil, err
	}
	if err := p.ints(keyFields, &kv.CreateRevision, &kv.ModRevision, &kv.SubRevision, &kv.Version, &kv.Lease); err != nil {
		return nil, fmt.Errorf("key %q: %v", shortKey(kv.Key), err)
	}
	if len(p.b) == 0 {
		return nil, fmt.Errorf("key %q: payload ends before the flags", shortKey(kv.Key))
	}
	flags := p.b[0]
	p.b = p.b[1:]
	if flags&^flagTombstone != 0 {
		return nil, fmt.Errorf("key %q: unknown flags %#02x", shortKey(kv.Key), flags)
	}
	kv.Tombstone = flags&flagTombstone != 0
	return kv, nil
}

var leaseFields = []string{"lease ID", "lease TTL"}

func (p *payloadReader) lease() (*Lease, error) {
	l := &Lease{}
	if err := p.ints(leaseFields, &l.ID, &l.TTL); err != nil {
		return nil, err
	}
	return l, nil
}

func (p *payloadReader) member() (*Member, error) {
	m := &Member{}
	var err error
	if m.ID, err = p.uvarint(); err != nil {
		return nil, fmt.Errorf("member ID: %v", err)
	}
	name, err := p.bytes("member name")
	if err != nil {
		return nil, err
	}
	m.Name = string(name)
	for _, f := range []struct {
		what string
		dst  *[]string
	}{{"client URL", &m.ClientURLs}, {"peer URL", &m.PeerURLs}} {
		n, err := p.uvarint()
		if err != nil {
			return nil, fmt.Errorf("member %x: %s count: %v", m.ID, f.what, err)
		}
		// Each URL takes at least its length byte, which bounds the
		// slice by the payload rather than by the claimed count.
		if n > uint64(len(p.b)) {
			return nil, fmt.Errorf("member %x: %d %ss in %d bytes", m.ID, n, f.what, len(p.b))
		}
		if n > 0 {
			*f.dst = make([]string, 0, n)
		}
		for range n {
			u, err := p.bytes(f.what)
			if err != nil {
				return nil, fmt.Errorf("member %x: %v", m.ID, err)
			}
			*f.dst = append(*f.dst, string(u))
		}
	}
	return m, nil
}
