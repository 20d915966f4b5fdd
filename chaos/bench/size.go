package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The size section: how each system holds a large store.
const (
	sizePrefix      = "bench/s/"
	putsPerTxn      = 100 // under etcd's default --max-txn-ops of 128
	loadWorkers     = 16  // txns in flight: enough to batch, few enough that none times out
	loadTxnTimeout  = 30 * time.Second
	settleTime      = time.Second // lets etcd's backend commit (every 100 ms) reach the disk before it is weighed
	snapshotTimeout = 10 * time.Minute
	restartTimeout  = 5 * time.Minute
	probeInterval   = 10 * time.Millisecond
)

// SizeReport is the size section: the same keys loaded into both systems.
type SizeReport struct {
	Keys       int         `json:"keys"`
	ValueBytes int         `json:"valueBytes"`
	PutsPerTxn int         `json:"putsPerTxn"`
	Barge      SizeMeasure `json:"barge"`
	Etcd       SizeMeasure `json:"etcd"`
	// Etcd37 is etcd 3.7, when the run had it.
	Etcd37 *SizeMeasure `json:"etcd37,omitempty"`
}

// SizeMeasure is the size section against one system.
type SizeMeasure struct {
	LoadMs     float64      `json:"loadMs"`
	KeysPerSec float64      `json:"keysPerSec"`
	Members    []MemberSize `json:"members"`
	RSSBytes   int64        `json:"rssBytes"`  // sum over the members
	DiskBytes  int64        `json:"diskBytes"` // sum over the members
	// The snapshot and the restart are of one follower.
	SnapshotMember string  `json:"snapshotMember"`
	SnapshotMs     float64 `json:"snapshotMs"`
	SnapshotBytes  int64   `json:"snapshotBytes"`
	RestartMember  string  `json:"restartMember"`
	RestartMs      float64 `json:"restartMs"` // process start → first linearizable get through it
	// Error is why the section stopped short; the figures before it stand.
	Error string `json:"error,omitempty"`
}

// MemberSize is one member's footprint after the load.
type MemberSize struct {
	Name      string `json:"name"`
	RSSBytes  int64  `json:"rssBytes"`  // VmRSS
	DiskBytes int64  `json:"diskBytes"` // sum of the sizes of the files of its data dir
}

// measureSize loads keys keys into c, weighs every member, snapshots a
// follower, then restarts it. It leaves the cluster healthy, or says why
// not.
func measureSize(ctx context.Context, c *Cluster, clis []*clientv3.Client, keys int) (SizeMeasure, error) {
	var s SizeMeasure
	took, err := loadKeys(ctx, clis, keys)
	if err != nil {
		return s, err
	}
	s.LoadMs, s.KeysPerSec = ms(took), float64(keys)/took.Seconds()
	c.log.Info("size: loaded", "keys", keys, "took", took.Round(time.Millisecond), "keysPerSec", int(s.KeysPerSec))
	select {
	case <-time.After(settleTime):
	case <-ctx.Done():
		return s, ctx.Err()
	}
	for _, m := range c.Members {
		sz, err := m.size()
		if err != nil {
			return s, err
		}
		s.Members = append(s.Members, sz)
		s.RSSBytes += sz.RSSBytes
		s.DiskBytes += sz.DiskBytes
	}
	lead, err := c.WaitHealthy(ctx, clis[0], healthyTimeout)
	if err != nil {
		return s, err
	}
	f := c.Members[(lead+1)%len(c.Members)]
	s.SnapshotMember = f.Name
	took, n, err := c.snapshot(ctx, f)
	if err != nil {
		return s, err
	}
	s.SnapshotMs, s.SnapshotBytes = ms(took), n
	c.log.Info("size: snapshot", "member", f.Name, "took", took.Round(time.Millisecond), "bytes", n)
	s.RestartMember = f.Name
	took, err = c.restart(ctx, f)
	if err != nil {
		return s, err
	}
	s.RestartMs = ms(took)
	if _, err := c.WaitHealthy(ctx, clis[0], healthyTimeout); err != nil {
		return s, fmt.Errorf("after the restart: %w", err)
	}
	return s, nil
}

// loadKeys writes keys keys of random (incompressible) valueSize-byte
// values, putsPerTxn per txn, loadWorkers txns at a time.
func loadKeys(ctx context.Context, clis []*clientv3.Client, keys int) (time.Duration, error) {
	txns := (keys + putsPerTxn - 1) / putsPerTxn
	start := time.Now()
	err := parallel(ctx, txns, loadWorkers, loadTxnTimeout, func(ctx context.Context, w, i int) error {
		rng := rand.New(rand.NewPCG(uint64(i), 0))
		value := make([]byte, valueSize)
		ops := make([]clientv3.Op, 0, putsPerTxn)
		for k := i * putsPerTxn; k < min((i+1)*putsPerTxn, keys); k++ {
			for j := range value {
				value[j] = byte(rng.Uint32())
			}
			ops = append(ops, clientv3.OpPut(sizeKey(k), string(value)))
		}
		if _, err := clis[w%len(clis)].Txn(ctx).Then(ops...).Commit(); err != nil {
			return fmt.Errorf("load txn %d of %d: %w", i+1, txns, err)
		}
		return nil
	})
	return time.Since(start), err
}

func sizeKey(i int) string { return fmt.Sprintf("%s%07d", sizePrefix, i) }

// size reads the member's resident memory and weighs its data dir.
func (m *Member) size() (MemberSize, error) {
	if !m.running() {
		return MemberSize{}, fmt.Errorf("%s is not running; see %s", m.Name, m.logPath)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", m.cmd.Process.Pid))
	if err != nil {
		return MemberSize{}, fmt.Errorf("memory of %s: %w", m.Name, err)
	}
	rss, err := parseVmRSS(string(status))
	if err != nil {
		return MemberSize{}, fmt.Errorf("memory of %s: %w", m.Name, err)
	}
	disk, err := dirBytes(m.DataDir)
	if err != nil {
		return MemberSize{}, fmt.Errorf("data dir of %s: %w", m.Name, err)
	}
	return MemberSize{Name: m.Name, RSSBytes: rss, DiskBytes: disk}, nil
}

// parseVmRSS returns the VmRSS line of /proc/<pid>/status in bytes.
func parseVmRSS(status string) (int64, error) {
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("VmRSS line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS line %q: %w", sc.Text(), err)
		}
		return kb << 10, nil
	}
	return 0, errors.New("no VmRSS line")
}

// dirBytes is the sum of the sizes of the regular files under dir: what
// the store keeps, preallocated space included, as `du --apparent-size`.
func dirBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n += info.Size()
		return nil
	})
	return n, err
}

// snapshot reads a snapshot of m through Maintenance.Snapshot to its end,
// as `etcdctl snapshot save` with m as its only endpoint does, and returns
// how long that took and the snapshot's size.
func (c *Cluster) snapshot(ctx context.Context, m *Member) (time.Duration, int64, error) {
	cli, err := c.memberClient(m)
	if err != nil {
		return 0, 0, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
	defer cancel()
	start := time.Now()
	resp, err := cli.SnapshotWithVersion(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("snapshot of %s: %w", m.Name, err)
	}
	defer resp.Snapshot.Close()
	n, err := io.Copy(io.Discard, resp.Snapshot)
	if err != nil {
		return 0, n, fmt.Errorf("snapshot of %s after %d bytes: %w", m.Name, n, err)
	}
	return time.Since(start), n, nil
}

// restart stops m with SIGTERM, starts it again on its data dir and times
// from the process start until a linearizable get through m alone
// succeeds: when a client of that member is served again.
func (c *Cluster) restart(ctx context.Context, m *Member) (time.Duration, error) {
	m.stop()
	start := time.Now()
	if err := m.start(); err != nil {
		return 0, fmt.Errorf("restart %s: %w", m.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, restartTimeout)
	defer cancel()
	var last error
	for attempt := 1; ; attempt++ {
		if !m.running() {
			return 0, fmt.Errorf("%s exited after its restart; see %s", m.Name, m.logPath)
		}
		err := c.getThrough(ctx, m)
		if err == nil {
			took := time.Since(start)
			// The attempts and the last refusal tell a slow start from a
			// slow catch-up.
			c.log.Info("size: restarted", "member", m.Name, "servedAfter", took.Round(time.Millisecond), "attempts", attempt, "lastErr", last)
			return took, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%s served no linearizable get within %s of its restart: %w", m.Name, restartTimeout, errors.Join(ctx.Err(), last))
		case <-time.After(probeInterval):
		}
	}
}

// getThrough does one linearizable get with a new client of m alone. A
// client dialled before m listens would wait out gRPC's reconnect backoff,
// a second, and blur the figure by as much, so the port is probed first
// and every attempt dials afresh.
func (c *Cluster) getThrough(ctx context.Context, m *Member) error {
	conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", m.ClientAddr)
	if err != nil {
		return err
	}
	conn.Close()
	cli, err := c.memberClient(m)
	if err != nil {
		return err
	}
	defer cli.Close()
	gctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	_, err = cli.Get(gctx, sizeKey(0))
	return err
}
