package snapfile

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
)

// Writer encodes a snapshot. It checks every record against the rules the
// Reader enforces, so a producer bug fails the save instead of leaving a
// file that cannot be restored.
//
// A Writer is not safe for concurrent use. After any error it is broken:
// every later call returns that error, and the output must be discarded.
type Writer struct {
	raw     io.Writer // the caller's writer; receives the unhashed trailer
	out     *bufio.Writer
	sum     hash.Hash
	meta    Metadata
	written int64
	order   keyOrder
	scratch []byte
	recHdr  [1 + binary.MaxVarintLen64]byte
	err     error
	closed  bool
}

var errWriterClosed = errors.New("snapfile: writer is closed")

// NewWriter writes the magic and the header to w. A zero meta.Format means
// FormatVersion; any other format cannot be written by this package.
func NewWriter(w io.Writer, meta Metadata) (*Writer, error) {
	if meta.Format == 0 {
		meta.Format = FormatVersion
	}
	if meta.Format != FormatVersion {
		return nil, fmt.Errorf("snapfile: cannot write format %d, only %d", meta.Format, FormatVersion)
	}
	if err := checkMetadata(&meta); err != nil {
		return nil, fmt.Errorf("snapfile: invalid metadata: %s", err)
	}
	hdr, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("snapfile: encode header: %w", err)
	}
	if len(hdr) > maxHeaderBytes {
		return nil, fmt.Errorf("snapfile: header is %d bytes, more than the %d a reader accepts", len(hdr), maxHeaderBytes)
	}
	sw := &Writer{raw: w, sum: sha256.New(), meta: meta}
	// Hashing below the buffer feeds SHA-256 large blocks instead of a
	// call per field.
	sw.out = bufio.NewWriterSize(io.MultiWriter(w, sw.sum), 256<<10)
	b := append(sw.scratch[:0], magic...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(hdr)))
	b = append(b, hdr...)
	sw.scratch = b
	if err := sw.write(b); err != nil {
		return nil, err
	}
	return sw, nil
}

// Written is the number of bytes accepted so far, buffered or not, for
// progress reports. After a successful Close it is the file size.
func (w *Writer) Written() int64 { return w.written }

func (w *Writer) usable() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errWriterClosed
	}
	return nil
}

func (w *Writer) write(p []byte) error {
	n, err := w.out.Write(p)
	w.written += int64(n)
	if err != nil {
		w.err = fmt.Errorf("snapfile: write: %w", err)
		return w.err
	}
	return nil
}

// reject records a refused record as the writer's error: the caller has
// already streamed part of a snapshot, which is useless without the rest.
func (w *Writer) reject(what string, err error) error {
	w.err = fmt.Errorf("snapfile: refusing to write %s: %s", what, err)
	return w.err
}

// record writes one record whose payload is the concatenation of parts,
// without first copying large keys and values into one buffer.
func (w *Writer) record(kind RecordKind, parts ...[]byte) error {
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	if size > maxRecordBytes {
		return w.reject(fmt.Sprintf("record %d", kind), fmt.Errorf("%d bytes, more than the %d a reader accepts", size, maxRecordBytes))
	}
	// A field, not a local: a local would escape to the heap through the
	// io.Writer under bufio, costing an allocation per record.
	hdr := w.recHdr[:]
	hdr[0] = byte(kind)
	n := 1 + binary.PutUvarint(hdr[1:], uint64(size))
	if err := w.write(hdr[:n]); err != nil {
		return err
	}
	for _, p := range parts {
		if err := w.write(p); err != nil {
			return err
		}
	}
	return nil
}

// WriteKey writes one key version. Keys must come in key order, and the
// versions of a key oldest first.
func (w *Writer) WriteKey(kv *KeyVersion) error {
	if err := w.usable(); err != nil {
		return err
	}
	if kv == nil {
		return w.reject("key version", errors.New("nil"))
	}
	if err := checkKey(kv, w.meta.Revision); err != nil {
		return w.reject("key version", err)
	}
	if err := w.order.check(kv); err != nil {
		return w.reject("key version", err)
	}
	// scratch holds the small fields: [len(Key)] [len(Value)] [tail], so
	// Key and Value go to the buffer straight from the caller's slices.
	b := binary.AppendUvarint(w.scratch[:0], uint64(len(kv.Key)))
	keyLen := len(b)
	b = binary.AppendUvarint(b, uint64(len(kv.Value)))
	valLen := len(b)
	b = binary.AppendVarint(b, kv.CreateRevision)
	b = binary.AppendVarint(b, kv.ModRevision)
	b = binary.AppendVarint(b, kv.SubRevision)
	b = binary.AppendVarint(b, kv.Version)
	b = binary.AppendVarint(b, kv.Lease)
	var flags byte
	if kv.Tombstone {
		flags |= flagTombstone
	}
	b = append(b, flags)
	w.scratch = b
	return w.record(KindKey, b[:keyLen], kv.Key, b[keyLen:valLen], kv.Value, b[valLen:])
}

// WriteLease writes one lease.
func (w *Writer) WriteLease(l *Lease) error {
	if err := w.usable(); err != nil {
		return err
	}
	if l == nil {
		return w.reject("lease", errors.New("nil"))
	}
	if err := checkLease(l); err != nil {
		return w.reject("lease", err)
	}
	b := binary.AppendVarint(w.scratch[:0], l.ID)
	b = binary.AppendVarint(b, l.TTL)
	w.scratch = b
	return w.record(KindLease, b)
}

// WriteMember writes one member's attributes.
func (w *Writer) WriteMember(m *Member) error {
	if err := w.usable(); err != nil {
		return err
	}
	if m == nil {
		return w.reject("member", errors.New("nil"))
	}
	if err := checkMember(m); err != nil {
		return w.reject("member", err)
	}
	b := binary.AppendUvarint(w.scratch[:0], m.ID)
	b = appendString(b, m.Name)
	for _, urls := range [][]string{m.ClientURLs, m.PeerURLs} {
		b = binary.AppendUvarint(b, uint64(len(urls)))
		for _, u := range urls {
			b = appendString(b, u)
		}
	}
	w.scratch = b
	return w.record(KindMember, b)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Close writes the end marker and the checksum and flushes them. It does
// not close the underlying writer, which the caller may still need (a Raft
// sink, say, is committed by its own Close).
func (w *Writer) Close() error {
	if err := w.usable(); err != nil {
		return err
	}
	if err := w.write([]byte{kindEnd}); err != nil {
		return err
	}
	if err := w.out.Flush(); err != nil {
		w.err = fmt.Errorf("snapfile: write: %w", err)
		return w.err
	}
	w.closed = true
	// The trailer is not part of what it hashes, so it bypasses the
	// hashing buffer; the flush above keeps the byte order right.
	n, err := w.raw.Write(w.sum.Sum(nil))
	w.written += int64(n)
	if err == nil && n != sha256.Size {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = fmt.Errorf("snapfile: write checksum: %w", err)
		return w.err
	}
	return nil
}
