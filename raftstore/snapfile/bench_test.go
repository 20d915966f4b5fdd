package snapfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
)

const benchKeys = 100_000

// benchRecords looks like a Kubernetes-ish store: path keys in order,
// values of a few hundred bytes.
func benchRecords() (Metadata, []KeyVersion) {
	kvs := make([]KeyVersion, benchKeys)
	val := bytes.Repeat([]byte("v"), 256)
	for i := range kvs {
		kvs[i] = KeyVersion{
			Key:            fmt.Appendf(nil, "/registry/configmaps/ns-%03d/cm-%08d", i/1000, i),
			Value:          val,
			CreateRevision: int64(i + 1),
			ModRevision:    int64(i + 1),
			Version:        1,
		}
	}
	return testMeta(benchKeys, benchKeys), kvs
}

func encodeKeys(b *testing.B, w io.Writer, meta Metadata, kvs []KeyVersion) {
	sw, err := NewWriter(w, meta)
	if err != nil {
		b.Fatal(err)
	}
	for i := range kvs {
		if err := sw.WriteKey(&kvs[i]); err != nil {
			b.Fatal(err)
		}
	}
	if err := sw.Close(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkWrite(b *testing.B) {
	meta, kvs := benchRecords()
	var buf bytes.Buffer
	encodeKeys(b, &buf, meta, kvs)
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	for b.Loop() {
		encodeKeys(b, io.Discard, meta, kvs)
	}
}

func BenchmarkRead(b *testing.B) {
	meta, kvs := benchRecords()
	var buf bytes.Buffer
	encodeKeys(b, &buf, meta, kvs)
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		sr, err := NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			_, err := sr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != benchKeys {
			b.Fatalf("read %d records", n)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	meta, kvs := benchRecords()
	var buf bytes.Buffer
	encodeKeys(b, &buf, meta, kvs)
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Verify(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
