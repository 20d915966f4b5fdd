package bench

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestParseVmRSS(t *testing.T) {
	for _, tc := range []struct {
		name, status string
		want         int64
		wantErr      bool
	}{
		{"kB to bytes", "Name:\tetcd\nVmPeak:\t  999 kB\nVmRSS:\t  123456 kB\nVmData:\t 1 kB\n", 123456 << 10, false},
		{"no VmRSS (a zombie)", "Name:\tetcd\nState:\tZ (zombie)\n", 0, true},
		{"unexpected unit", "VmRSS:\t 12 MB\n", 0, true},
		{"not a number", "VmRSS:\t x kB\n", 0, true},
	} {
		got, err := parseVmRSS(tc.status)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%s: parseVmRSS = %d, %v; want %d, error %v", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestDirBytes(t *testing.T) {
	dir := t.TempDir()
	for path, size := range map[string]int{"member/wal/0.wal": 4096, "member/snap/db": 1000, "raft.db": 24} {
		p := filepath.Join(dir, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A symlink is not the store's data: it is not followed or counted.
	if err := os.Symlink(filepath.Join(dir, "raft.db"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if got, err := dirBytes(dir); err != nil || got != 4096+1000+24 {
		t.Fatalf("dirBytes = %d, %v; want %d", got, err, 4096+1000+24)
	}
	if _, err := dirBytes(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("dirBytes of a missing dir succeeded")
	}
}

func TestParallel(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name       string
		n, workers int
		failAt     int // -1: no failure
		wantErr    error
	}{
		{"every index once", 1000, 8, -1, nil},
		{"more workers than work", 3, 16, -1, nil},
		{"nothing to do", 0, 4, -1, nil},
		{"first error stops the rest", 1000, 4, 10, boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var seen []int
			err := parallel(context.Background(), tc.n, tc.workers, time.Second, func(ctx context.Context, w, i int) error {
				if w < 0 || w >= tc.workers {
					t.Errorf("worker index %d of %d", w, tc.workers)
				}
				if _, ok := ctx.Deadline(); !ok {
					t.Error("call without a deadline")
				}
				if i == tc.failAt {
					return boom
				}
				mu.Lock()
				seen = append(seen, i)
				mu.Unlock()
				return nil
			})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.failAt >= 0 {
				if len(seen) >= tc.n-1 {
					t.Errorf("%d calls succeeded after the failure at %d of %d", len(seen), tc.failAt, tc.n)
				}
				return
			}
			slices.Sort(seen)
			for i, v := range seen {
				if v != i {
					t.Fatalf("indices %v..., want each of [0, %d) once", seen[:min(len(seen), 10)], tc.n)
				}
			}
			if len(seen) != tc.n {
				t.Fatalf("%d calls, want %d", len(seen), tc.n)
			}
		})
	}
}

func TestParallelCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := parallel(ctx, 10, 2, time.Second, func(context.Context, int, int) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestShare(t *testing.T) {
	for _, tc := range []struct{ total, n int }{{10000, 16}, {10, 3}, {5, 8}} {
		all := make([]int, tc.total)
		for i := range all {
			all[i] = i
		}
		var joined []int
		for s := range tc.n {
			part := share(all, s, tc.n)
			if d := len(part) - tc.total/tc.n; d < 0 || d > 1 {
				t.Errorf("share %d of %d of %d leases has %d", s, tc.n, tc.total, len(part))
			}
			joined = append(joined, part...)
		}
		if !slices.Equal(joined, all) {
			t.Errorf("the %d shares of %d leases do not partition them", tc.n, tc.total)
		}
	}
}

func TestSizeKey(t *testing.T) {
	// Fixed width keeps the keys in load order, and the prefix keeps them
	// out of the rows' key space.
	if a, b := sizeKey(9), sizeKey(999999); a != "bench/s/0000009" || b != "bench/s/0999999" || a > b {
		t.Fatalf("sizeKey = %q, %q", a, b)
	}
}

func TestFdatasyncFloor(t *testing.T) {
	dir := t.TempDir()
	l, err := FdatasyncFloor(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if l.Count != fsyncRounds || l.P50 <= 0 || l.P50 > l.P99 || l.P99 > l.Max {
		t.Fatalf("floor %+v", l)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("scratch file left behind: %v", left)
	}
}
