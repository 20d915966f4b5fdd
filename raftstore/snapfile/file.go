package snapfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Stats counts what a verified snapshot holds.
type Stats struct {
	KeyVersions int64 `json:"keyVersions"` // key records, tombstones included
	LiveKeys    int64 `json:"liveKeys"`    // keys whose newest version is not a tombstone
	Leases      int64 `json:"leases"`
	Members     int64 `json:"members"`
	Bytes       int64 `json:"bytes"` // the whole file, checksum included
}

// Verify reads a whole snapshot and checks every record, the checksum, and
// what the records can be checked against each other with: that the
// header's KeyCount matches the live keys, and that no lease or member
// appears twice. It keeps only the lease and member IDs in memory.
//
// On error, the Metadata and Stats returned describe what was read before
// the problem, for diagnostics.
func Verify(r io.Reader) (Metadata, Stats, error) {
	var st Stats
	sr, err := NewReader(r)
	if err != nil {
		return Metadata{}, st, err
	}
	meta := sr.Metadata()
	var (
		last     []byte // key of the previous key record
		lastLive bool
		haveKey  bool
		leases   = map[int64]struct{}{}
		members  = map[uint64]struct{}{}
	)
	for {
		rec, err := sr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		st.Bytes = sr.in.offset()
		if err != nil {
			return meta, st, err
		}
		where := func() string { return fmt.Sprintf("record %d", sr.n) }
		switch rec.Kind {
		case KindKey:
			st.KeyVersions++
			// The reader enforces key order, so a key's versions are
			// adjacent and the last one decides whether it is live.
			if haveKey && !bytes.Equal(last, rec.Key.Key) && lastLive {
				st.LiveKeys++
			}
			haveKey, last, lastLive = true, rec.Key.Key, !rec.Key.Tombstone
		case KindLease:
			st.Leases++
			if _, dup := leases[rec.Lease.ID]; dup {
				return meta, st, fmt.Errorf("%w: %s: lease %x appears twice", ErrCorrupt, where(), rec.Lease.ID)
			}
			leases[rec.Lease.ID] = struct{}{}
		case KindMember:
			st.Members++
			if _, dup := members[rec.Member.ID]; dup {
				return meta, st, fmt.Errorf("%w: %s: member %x appears twice", ErrCorrupt, where(), rec.Member.ID)
			}
			members[rec.Member.ID] = struct{}{}
		}
	}
	if haveKey && lastLive {
		st.LiveKeys++
	}
	st.Bytes = sr.in.offset()
	if st.LiveKeys != meta.KeyCount {
		return meta, st, fmt.Errorf("%w: the header promises %d live keys, the records hold %d", ErrCorrupt, meta.KeyCount, st.LiveKeys)
	}
	return meta, st, nil
}

// WriteFileAtomic writes a file through fill so that path holds either its
// old content or the complete new content, never a part: fill writes a
// temporary file in the same directory (so the rename cannot cross file
// systems), which is fsynced and renamed over path only if fill succeeds.
// The temporary file is removed on any failure, including a panic in fill.
//
// The file is created with mode 0600: a snapshot holds every key in the
// cluster, secrets included.
func WriteFileAtomic(path string, fill func(w io.Writer) error) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if base == "" {
		return fmt.Errorf("snapfile: %q names a directory, not a file", path)
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("snapfile: create a temporary file next to %s: %w", path, err)
	}
	renamed := false
	defer func() {
		if !renamed {
			_ = tmp.Close() // may already be closed; the error is moot
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := fill(tmp); err != nil {
		return fmt.Errorf("snapfile: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("snapfile: fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("snapfile: close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("snapfile: rename %s to %s: %w", tmp.Name(), path, err)
	}
	renamed = true
	// Without this the rename itself may not survive a crash, and the old
	// file (or none) could reappear although we reported success.
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("snapfile: %s is in place but may not survive a crash: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
