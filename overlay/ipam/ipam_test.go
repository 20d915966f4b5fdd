package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func open(t *testing.T, dir, cidr string) *Allocator {
	t.Helper()
	a, err := Open(dir, netip.MustParsePrefix(cidr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func TestAllocate(t *testing.T) {
	tests := []struct {
		name string
		cidr string
		ids  []string
		want []string // address per id, or "exhausted"
	}{
		{"first addresses skip network and gateway", "10.244.1.0/24", []string{"a", "b", "c"}, []string{"10.244.1.2", "10.244.1.3", "10.244.1.4"}},
		{"same id gets same address", "10.244.1.0/24", []string{"a", "b", "a"}, []string{"10.244.1.2", "10.244.1.3", "10.244.1.2"}},
		{"a /30 has one pod address", "10.244.7.0/30", []string{"a", "b"}, []string{"10.244.7.2", "exhausted"}},
		{"a /29 skips broadcast", "10.244.7.8/29", []string{"a", "b", "c", "d", "e", "f"},
			[]string{"10.244.7.10", "10.244.7.11", "10.244.7.12", "10.244.7.13", "10.244.7.14", "exhausted"}},
		{"unmasked CIDR is masked", "10.244.3.77/24", []string{"a"}, []string{"10.244.3.2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := open(t, t.TempDir(), tt.cidr)
			for i, id := range tt.ids {
				al, err := a.Allocate(id, nil)
				if tt.want[i] == "exhausted" {
					if !errors.Is(err, ErrExhausted) {
						t.Fatalf("allocate %s: got %v, %v; want ErrExhausted", id, al.IP, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("allocate %s: %v", id, err)
				}
				if al.IP.String() != tt.want[i] {
					t.Fatalf("allocate %s: got %v, want %s", id, al.IP, tt.want[i])
				}
			}
		})
	}
}

func TestReleaseRoundRobin(t *testing.T) {
	a := open(t, t.TempDir(), "10.244.1.0/29") // pod addresses .2-.6
	for _, id := range []string{"a", "b", "c"} {
		if _, err := a.Allocate(id, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Release("a"); err != nil {
		t.Fatal(err)
	}
	if err := a.Release("never-allocated"); err != nil {
		t.Fatalf("releasing an unknown id: %v", err)
	}
	// A released address is not reused while fresh ones remain.
	steps := []struct{ id, want string }{{"d", "10.244.1.5"}, {"e", "10.244.1.6"}, {"f", "10.244.1.2"}}
	for _, s := range steps {
		al, err := a.Allocate(s.id, nil)
		if err != nil {
			t.Fatal(err)
		}
		if al.IP.String() != s.want {
			t.Fatalf("allocate %s: got %v, want %s", s.id, al.IP, s.want)
		}
	}
	if _, err := a.Allocate("g", nil); !errors.Is(err, ErrExhausted) {
		t.Fatalf("full range: got %v, want ErrExhausted", err)
	}
	if _, ok := a.Get("a"); ok {
		t.Fatal("released id still has an allocation")
	}
}

func TestPersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	a := open(t, dir, "10.244.2.0/24")
	want := map[string]netip.Addr{}
	for i := range 5 {
		id := fmt.Sprintf("pod-%d", i)
		al, err := a.Allocate(id, map[string]string{"name": id})
		if err != nil {
			t.Fatal(err)
		}
		want[id] = al.IP
	}
	if err := a.Release("pod-1"); err != nil {
		t.Fatal(err)
	}
	delete(want, "pod-1")
	if _, err := Open(dir, netip.MustParsePrefix("10.244.2.0/24")); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second open while the first holds the directory: got %v", err)
	}
	a.Close()

	b := open(t, dir, "10.244.2.0/24")
	got := b.List()
	if len(got) != len(want) {
		t.Fatalf("after restart: %d allocations, want %d: %v", len(got), len(want), got)
	}
	for _, al := range got {
		if want[al.ID] != al.IP || al.Meta["name"] != al.ID {
			t.Fatalf("after restart: %s has %v meta %v, want %v", al.ID, al.IP, al.Meta, want[al.ID])
		}
	}
	// Round robin continues after the last address handed out before
	// the restart, not from the released hole.
	al, err := b.Allocate("pod-new", nil)
	if err != nil {
		t.Fatal(err)
	}
	if al.IP != netip.MustParseAddr("10.244.2.7") {
		t.Fatalf("after restart: new pod got %v, want 10.244.2.7", al.IP)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Fatalf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestBadState(t *testing.T) {
	tests := []struct {
		name    string
		content string
		cidr    string
		wantErr string
	}{
		{"not JSON", "{\"version\": 1, \"allocations\": [", "10.244.1.0/24", "is corrupt"},
		{"truncated to nothing", "", "10.244.1.0/24", "is corrupt"},
		{"wrong version", `{"version": 7, "cidr": "10.244.1.0/24", "allocations": []}`, "10.244.1.0/24", "version 7"},
		{"address outside CIDR", `{"version": 1, "cidr": "10.244.1.0/24", "allocations": [{"id": "a", "ip": "10.9.9.9"}]}`, "10.244.1.0/24", `"a" has address 10.9.9.9`},
		{"gateway allocated", `{"version": 1, "cidr": "10.244.1.0/24", "allocations": [{"id": "a", "ip": "10.244.1.1"}]}`, "10.244.1.0/24", "not a pod address"},
		{"duplicate address", `{"version": 1, "cidr": "10.244.1.0/24", "allocations": [{"id": "a", "ip": "10.244.1.5"}, {"id": "b", "ip": "10.244.1.5"}]}`, "10.244.1.0/24", "allocated to both"},
		{"duplicate id", `{"version": 1, "cidr": "10.244.1.0/24", "allocations": [{"id": "a", "ip": "10.244.1.5"}, {"id": "a", "ip": "10.244.1.6"}]}`, "10.244.1.0/24", "allocated twice"},
		{"empty id", `{"version": 1, "cidr": "10.244.1.0/24", "allocations": [{"id": "", "ip": "10.244.1.5"}]}`, "10.244.1.0/24", "has no ID"},
		{"bad address text", `{"version": 1, "cidr": "10.244.1.0/24", "allocations": [{"id": "a", "ip": "ten"}]}`, "10.244.1.0/24", "is corrupt"},
		{"CIDR changed under live pods", `{"version": 1, "cidr": "10.244.9.0/24", "allocations": [{"id": "a", "ip": "10.244.9.5"}]}`, "10.244.1.0/24", "the pod CIDR is now 10.244.1.0/24"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, StateFile)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			a, err := Open(dir, netip.MustParsePrefix(tt.cidr))
			if err == nil {
				a.Close()
				t.Fatalf("open succeeded on bad state")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q: want it to name %s and say %q", err, path, tt.wantErr)
			}
			// The lock is released on failure, so fixing the file and
			// retrying works in the same process.
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			b, err := Open(dir, netip.MustParsePrefix(tt.cidr))
			if err != nil {
				t.Fatalf("open after removing the bad file: %v", err)
			}
			b.Close()
		})
	}
}

func TestCIDRChangeWithoutPods(t *testing.T) {
	dir := t.TempDir()
	a := open(t, dir, "10.244.1.0/24")
	if _, err := a.Allocate("x", nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Release("x"); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b := open(t, dir, "10.244.5.0/24")
	al, err := b.Allocate("y", nil)
	if err != nil {
		t.Fatal(err)
	}
	if al.IP != netip.MustParseAddr("10.244.5.2") {
		t.Fatalf("got %v, want 10.244.5.2", al.IP)
	}
}

func TestOpenRejects(t *testing.T) {
	for _, c := range []string{"10.244.0.0/31", "fd00::/64"} {
		if _, err := Open(t.TempDir(), netip.MustParsePrefix(c)); err == nil {
			t.Errorf("Open(%s) succeeded", c)
		}
	}
	a := open(t, t.TempDir(), "10.244.1.0/24")
	if _, err := a.Allocate("", nil); err == nil {
		t.Error("empty id allocated")
	}
}

// FuzzOpen feeds arbitrary state files to Open: it must never panic, and
// whatever it accepts must be a consistent allocator.
func FuzzOpen(f *testing.F) {
	f.Add([]byte(`{"version": 1, "cidr": "10.244.1.0/24", "last": "10.244.1.3", "allocations": [{"id": "a", "ip": "10.244.1.2"}, {"id": "b", "ip": "10.244.1.3", "meta": {"name": "b"}}]}`))
	f.Add([]byte(`{"version": 1, "cidr": "10.244.1.0/24", "allocations": null}`))
	f.Add([]byte(`{"version": 1, "cidr": "10.244.1.0/24", "allocations": [{"id": "a", "ip": "10.244.1.255"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, StateFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
		a, err := Open(dir, netip.MustParsePrefix("10.244.1.0/24"))
		if err != nil {
			return
		}
		defer a.Close()
		seen := map[netip.Addr]bool{}
		for _, al := range a.List() {
			if !a.usable(al.IP) || seen[al.IP] || al.ID == "" {
				t.Fatalf("accepted bad allocation %+v", al)
			}
			seen[al.IP] = true
		}
		if _, err := a.Allocate("fuzz-new", nil); err != nil && !errors.Is(err, ErrExhausted) {
			t.Fatalf("allocate after open: %v", err)
		}
	})
}
