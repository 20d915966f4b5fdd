package ipam

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// StateFile is the name of the state file inside the state directory.
const StateFile = "ipam.json"

const lockFile = "ipam.lock"

// ErrExhausted is returned (wrapped) when every address is taken.
var ErrExhausted = errors.New("no free address")

// Allocation is one address handed out.
type Allocation struct {
	ID string     `json:"id"`
	IP netip.Addr `json:"ip"`
	// Meta is kept for the caller (podnet records the pod's namespace,
	// name and network namespace path here).
	Meta map[string]string `json:"meta,omitempty"`
}

type state struct {
	Version     int          `json:"version"`
	CIDR        netip.Prefix `json:"cidr"`
	Last        netip.Addr   `json:"last,omitempty"`
	Allocations []Allocation `json:"allocations"`
}

// Allocator hands out addresses of one CIDR. It is safe for concurrent
// use.
type Allocator struct {
	dir    string
	path   string
	cidr   netip.Prefix
	lock   *os.File
	mu     sync.Mutex
	last   netip.Addr
	byID   map[string]Allocation
	byAddr map[netip.Addr]string
}

// Open loads (or starts) the allocator for cidr in dir. It fails if the
// state file is unreadable or corrupt (naming the file and the problem),
// if it records a different CIDR while addresses are still allocated, or
// if another process holds the directory.
func Open(dir string, cidr netip.Prefix) (*Allocator, error) {
	if !cidr.IsValid() || !cidr.Addr().Is4() || cidr.Bits() > 30 {
		return nil, fmt.Errorf("ipam: CIDR %v is not an IPv4 prefix of /30 or larger", cidr)
	}
	cidr = cidr.Masked()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ipam: state directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ipam: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("ipam: %s is in use by another process", dir)
		}
		return nil, fmt.Errorf("ipam: lock %s: %w", lock.Name(), err)
	}
	a := &Allocator{
		dir:    dir,
		path:   filepath.Join(dir, StateFile),
		cidr:   cidr,
		lock:   lock,
		byID:   map[string]Allocation{},
		byAddr: map[netip.Addr]string{},
	}
	if err := a.load(); err != nil {
		lock.Close()
		return nil, err
	}
	return a, nil
}

func (a *Allocator) load() error {
	b, err := os.ReadFile(a.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ipam: %w", err)
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("ipam: state file %s is corrupt: %w (move it aside to start over; pods it names lose their addresses)", a.path, err)
	}
	if s.Version != 1 {
		return fmt.Errorf("ipam: state file %s: version %d, want 1", a.path, s.Version)
	}
	if s.CIDR.Masked() != a.cidr && len(s.Allocations) > 0 {
		return fmt.Errorf("ipam: state file %s holds %d allocations from %v, but the pod CIDR is now %v; detach those pods first",
			a.path, len(s.Allocations), s.CIDR, a.cidr)
	}
	for i, al := range s.Allocations {
		switch {
		case al.ID == "":
			return fmt.Errorf("ipam: state file %s: allocation %d has no ID", a.path, i)
		case !a.usable(al.IP):
			return fmt.Errorf("ipam: state file %s: allocation %q has address %v, not a pod address of %v", a.path, al.ID, al.IP, a.cidr)
		}
		if _, dup := a.byID[al.ID]; dup {
			return fmt.Errorf("ipam: state file %s: ID %q is allocated twice", a.path, al.ID)
		}
		if other, dup := a.byAddr[al.IP]; dup {
			return fmt.Errorf("ipam: state file %s: address %v is allocated to both %q and %q", a.path, al.IP, other, al.ID)
		}
		a.byID[al.ID] = al
		a.byAddr[al.IP] = al.ID
	}
	if a.cidr.Contains(s.Last) {
		a.last = s.Last
	}
	return nil
}

// usable reports whether ip may go to a pod: inside the CIDR and neither
// the network address (the tunnel device's), the gateway (the bridge's),
// nor the broadcast address.
func (a *Allocator) usable(ip netip.Addr) bool {
	if !ip.Is4() || !a.cidr.Contains(ip) {
		return false
	}
	first := a.cidr.Addr()
	return ip != first && ip != first.Next() && ip != broadcast(a.cidr)
}

func broadcast(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// CIDR is the range addresses come from.
func (a *Allocator) CIDR() netip.Prefix { return a.cidr }

// Allocate returns id's address, allocating one if id has none. An id
// that already has an address gets the same one back (its meta is
// updated if it differs), so a retried or repeated allocation is
// harmless. The state is on disk before Allocate returns.
func (a *Allocator) Allocate(id string, meta map[string]string) (Allocation, error) {
	if id == "" {
		return Allocation{}, errors.New("ipam: allocate: empty ID")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if al, ok := a.byID[id]; ok {
		if meta == nil || maps.Equal(al.Meta, meta) {
			return al, nil
		}
		al.Meta = maps.Clone(meta)
		a.byID[id] = al
		if err := a.save(); err != nil {
			return Allocation{}, err
		}
		return al, nil
	}
	ip, ok := a.next()
	if !ok {
		return Allocation{}, fmt.Errorf("ipam: allocate %q from %v: %w (%d addresses in use)", id, a.cidr, ErrExhausted, len(a.byID))
	}
	al := Allocation{ID: id, IP: ip, Meta: maps.Clone(meta)}
	prevLast := a.last
	a.byID[id] = al
	a.byAddr[ip] = id
	a.last = ip
	if err := a.save(); err != nil {
		delete(a.byID, id)
		delete(a.byAddr, ip)
		a.last = prevLast
		return Allocation{}, err
	}
	return al, nil
}

// next finds the first free address after the last one handed out,
// wrapping around the CIDR once.
func (a *Allocator) next() (netip.Addr, bool) {
	start := a.last
	if !a.cidr.Contains(start) {
		start = a.cidr.Addr()
	}
	size := 1 << (32 - a.cidr.Bits())
	ip := start
	for range size {
		ip = ip.Next()
		if !a.cidr.Contains(ip) {
			ip = a.cidr.Addr()
		}
		if a.usable(ip) {
			if _, taken := a.byAddr[ip]; !taken {
				return ip, true
			}
		}
	}
	return netip.Addr{}, false
}

// Release frees id's address; releasing an unknown id does nothing.
func (a *Allocator) Release(id string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	al, ok := a.byID[id]
	if !ok {
		return nil
	}
	delete(a.byID, id)
	delete(a.byAddr, al.IP)
	if err := a.save(); err != nil {
		a.byID[id] = al
		a.byAddr[al.IP] = id
		return err
	}
	return nil
}

// Get returns id's allocation.
func (a *Allocator) Get(id string) (Allocation, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	al, ok := a.byID[id]
	return al, ok
}

// List returns every allocation, ordered by address.
func (a *Allocator) List() []Allocation {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := slices.Collect(maps.Values(a.byID))
	slices.SortFunc(out, func(x, y Allocation) int { return x.IP.Compare(y.IP) })
	return out
}

// Close releases the state directory's lock.
func (a *Allocator) Close() error {
	if a.lock == nil {
		return nil
	}
	err := a.lock.Close()
	a.lock = nil
	return err
}

// save writes the state atomically: a reader (or the next process) sees
// either the old file or the new one, never a mix.
func (a *Allocator) save() error {
	s := state{Version: 1, CIDR: a.cidr, Last: a.last}
	s.Allocations = slices.Collect(maps.Values(a.byID))
	slices.SortFunc(s.Allocations, func(x, y Allocation) int { return x.IP.Compare(y.IP) })
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("ipam: encode state: %w", err)
	}
	tmp, err := os.CreateTemp(a.dir, StateFile+".tmp-*")
	if err != nil {
		return fmt.Errorf("ipam: save: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("ipam: save %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("ipam: save %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("ipam: save %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), a.path); err != nil {
		return fmt.Errorf("ipam: save: %w", err)
	}
	d, err := os.Open(a.dir)
	if err != nil {
		return fmt.Errorf("ipam: save: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("ipam: save: sync %s: %w", a.dir, err)
	}
	return nil
}
