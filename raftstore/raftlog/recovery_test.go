package raftlog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.uber.org/zap"
)

// writeLog leaves a closed log in dir with entries 1..n appended in
// batches of ten, then one last entry n+1 of 3 KiB in an append of its own.
func writeLog(t *testing.T, dir string, n uint64) {
	t.Helper()
	s := openT(t, dir)
	store(t, s, mkLogs(1, n, 1))
	big := &raft.Log{Index: n + 1, Term: 1, Type: raft.LogCommand, Data: bytes.Repeat([]byte("big"), 1024)}
	if err := s.StoreLog(big); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// frames lists the offsets of the record frames in a segment, up to the
// preallocated zeros.
func frames(t *testing.T, path string) ([]int64, []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for off := int64(0); off+8 <= int64(len(data)); {
		_, next, ok := frameAt(data, off)
		if !ok {
			break
		}
		offs = append(offs, off)
		off = next
	}
	return offs, data
}

func segmentPaths(t *testing.T, dir string) []string {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, sg := range segs {
		out = append(out, filepath.Join(dir, sg.name))
	}
	return out
}

func TestOpenRepairsATornTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		tear func(t *testing.T, path string, last int64, data []byte)
	}{
		{"cut short", func(t *testing.T, path string, last int64, data []byte) {
			// The file ends part-way through the last record.
			if err := os.Truncate(path, last+1000); err != nil {
				t.Fatal(err)
			}
		}},
		{"sectors never written", func(t *testing.T, path string, last int64, data []byte) {
			// The record's header made it, its last sectors did not: they
			// read as the preallocated zeros.
			clear(data[last+1024 : last+3000])
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "log")
			writeLog(t, dir, 300)
			paths := segmentPaths(t, dir)
			tail := paths[len(paths)-1]
			offs, data := frames(t, tail)
			tc.tear(t, tail, offs[len(offs)-1], data)
			s := openT(t, dir)
			defer s.Close()
			expect(t, s, 1, 300, term1)
			if _, err := os.Stat(tail + ".broken"); err != nil {
				t.Errorf("no copy of the torn segment kept: %v", err)
			}
			// The repaired log takes appends and reads them back.
			store(t, s, mkLogs(301, 320, 2))
			s2 := reopen(t, s)
			defer s2.Close()
			expect(t, s2, 1, 320, func(i uint64) uint64 {
				if i > 300 {
					return 2
				}
				return 1
			})
		})
	}
}

func TestOpenRefusesDamage(t *testing.T) {
	for _, tc := range []struct {
		name string
		// damage breaks the log in dir and returns what the error must name.
		damage func(t *testing.T, dir string) []string
	}{
		{"flipped bit in an older segment", func(t *testing.T, dir string) []string {
			path := segmentPaths(t, dir)[1]
			offs, data := frames(t, path)
			off := offs[len(offs)/2] + 20
			data[off] ^= 0x10
			write(t, path, data)
			return []string{filepath.Base(path), "position", "crc mismatch"}
		}},
		{"flipped bit in the last segment", func(t *testing.T, dir string) []string {
			paths := segmentPaths(t, dir)
			path := paths[len(paths)-1]
			offs, data := frames(t, path)
			data[offs[len(offs)/2]+20] ^= 0x01
			write(t, path, data)
			return []string{filepath.Base(path), "position"}
		}},
		{"flipped bit in a record's length", func(t *testing.T, dir string) []string {
			// The decoder then reads a record that runs into the zeros
			// after the data, and takes it for a torn write.
			paths := segmentPaths(t, dir)
			path := paths[len(paths)-1]
			offs, data := frames(t, path)
			off := offs[len(offs)/2]
			binary.LittleEndian.PutUint64(data[off:], binary.LittleEndian.Uint64(data[off:])|1<<13)
			write(t, path, data)
			return []string{filepath.Base(path), "offset", "not a torn write"}
		}},
		{"missing segment", func(t *testing.T, dir string) []string {
			paths := segmentPaths(t, dir)
			if err := os.Remove(paths[2]); err != nil {
				t.Fatal(err)
			}
			return []string{"missing", filepath.Base(paths[1]), filepath.Base(paths[3])}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "log")
			writeLog(t, dir, 900)
			if n := len(segmentPaths(t, dir)); n < 5 {
				t.Fatalf("only %d segments", n)
			}
			before := listing(t, dir)
			want := tc.damage(t, dir)
			damaged := listing(t, dir)
			s, err := Open(dir, Options{})
			if err == nil {
				s.Close()
				t.Fatal("a damaged log opened")
			}
			t.Logf("refused: %v", err)
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if after := listing(t, dir); after != damaged {
				t.Errorf("refusing changed the log:\nbefore %s\nafter  %s (undamaged: %s)", damaged, after, before)
			}
		})
	}
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// listing names every file in dir with its size, to see that a refused
// open truncated nothing.
func listing(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%d ", e.Name(), fi.Size())
	}
	return b.String()
}

func TestRefusesForeignMetadata(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	w, err := wal.Create(zap.NewNop(), dir, []byte("someone else's wal"))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if s, err := Open(dir, Options{}); err == nil {
		s.Close()
		t.Fatal("opened a log with other metadata")
	} else if !strings.Contains(err.Error(), "not a barge Raft log") {
		t.Fatalf("error %v", err)
	}
}
