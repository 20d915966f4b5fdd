package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TortureConfig is one crash-torture run: a 3-peer barge cluster on
// loopback under write load, its members killed with SIGKILL over and
// over, then checked for every acknowledged write.
type TortureConfig struct {
	BargeBin string
	Dir      string // certificates, data dirs and member logs
	Kills    int
	Seed     uint64
	// SegmentBytes, SnapshotLogBytes and TrailingLogs make the log store
	// cut segments, snapshot and compact every few hundred writes, so
	// that kills land in those too (defaults 64 KiB, 256 KiB, 64).
	SegmentBytes, SnapshotLogBytes int64
	TrailingLogs                   int
	Writers                        int // concurrent writers (default 8)
	Log                            *slog.Logger
}

// Kill moments. A member is killed at a random instant, or as soon as
// its data dir shows that one of these is under way.
const (
	MomentRandom     = "random"
	MomentCut        = "segment cut"     // a new segment was just renamed into place; the cut is finishing
	MomentSnapshot   = "snapshot"        // a snapshot is being written (its .tmp dir exists)
	MomentCompaction = "compaction"      // the snapshot just completed: the log is being compacted and purged
	tortureValue     = 1536              // bytes per value: a 64 KiB segment holds about 40 writes
	tortureTimeout   = 2 * time.Second   // per write, as a client with a short deadline
	momentWait       = 3 * time.Second   // how long a targeted kill waits for its moment
	tortureHealthy   = 60 * time.Second  // for the cluster to be whole after a restart
	tortureVerifyCtx = 120 * time.Second // for the final check
	pollEvery        = 500 * time.Microsecond
)

// TortureReport is what a run did and found.
type TortureReport struct {
	Kills     int            `json:"kills"`
	ByMoment  map[string]int `json:"byMoment"` // kills per moment that was hit
	Missed    int            `json:"missed"`   // targeted kills whose moment did not come in time (killed anyway)
	Acked     int            `json:"acked"`    // writes acknowledged, all checked after the run
	Unknown   int            `json:"unknown"`  // writes that failed or timed out (may or may not have applied)
	Revision  int64          `json:"revision"` // the revision every member's HashKV was taken at
	Hash      uint32         `json:"hash"`     // the hash all members agreed on
	Repaired  int            `json:"repaired"` // torn tails the members' logs repaired on restart
	Elapsed   string         `json:"elapsed"`
	Lost      []string       `json:"lost,omitempty"`
	HashError string         `json:"hashError,omitempty"`
}

func (c *TortureConfig) setDefaults() {
	if c.SegmentBytes == 0 {
		c.SegmentBytes = 64 << 10
	}
	if c.SnapshotLogBytes == 0 {
		c.SnapshotLogBytes = 256 << 10
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 64
	}
	if c.Writers == 0 {
		c.Writers = 8
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Torture runs the crash torture and returns an error if any
// acknowledged write is lost or the members' HashKV disagree.
func Torture(ctx context.Context, cfg TortureConfig) (*TortureReport, error) {
	cfg.setDefaults()
	begin := time.Now()
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x70e7))
	certs := filepath.Join(cfg.Dir, "certs")
	if out, err := exec.CommandContext(ctx, cfg.BargeBin, "certs", "init", "--dir", certs, "--hosts", "127.0.0.1").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("barge certs init: %w: %s", err, out)
	}
	c, err := NewBargeCluster(cfg.BargeBin, cfg.Dir, certs, []string{
		fmt.Sprintf("--wal-segment-bytes=%d", cfg.SegmentBytes),
		fmt.Sprintf("--snapshot-log-bytes=%d", cfg.SnapshotLogBytes),
		fmt.Sprintf("--trailing-logs=%d", cfg.TrailingLogs),
		// History is compacted, so that snapshots stay small however
		// long the run.
		"--auto-compaction-mode=revision", "--auto-compaction-retention=5000",
	}, cfg.Log)
	if err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		return nil, err
	}
	defer c.Stop()
	cli, err := c.Client()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	if _, err := c.WaitHealthy(ctx, cli, tortureHealthy); err != nil {
		return nil, err
	}

	rep := &TortureReport{ByMoment: map[string]int{}}
	acked := &ackedSet{acked: map[string]string{}, failed: map[string][]string{}}
	wctx, stopWriters := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range cfg.Writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			writeUntil(wctx, cli, w, acked)
		}()
	}
	killErr := killLoop(ctx, c, cli, cfg, rng, rep)
	stopWriters()
	wg.Wait()
	rep.Acked, rep.Unknown = acked.counts()
	if killErr != nil {
		return rep, killErr
	}

	vctx, cancel := context.WithTimeout(ctx, tortureVerifyCtx)
	defer cancel()
	if _, err := c.WaitHealthy(vctx, cli, tortureHealthy); err != nil {
		return rep, err
	}
	rep.Lost = acked.missing(vctx, cli)
	rep.Revision, rep.Hash, err = agreedHash(vctx, c, cli)
	if err != nil {
		rep.HashError = err.Error()
	}
	rep.Repaired = countRepairs(c)
	rep.Elapsed = time.Since(begin).Round(time.Second).String()
	if len(rep.Lost) > 0 {
		err = errors.Join(err, fmt.Errorf("%d of %d acknowledged writes lost, e.g. %s", len(rep.Lost), rep.Acked, rep.Lost[0]))
	}
	return rep, err
}

// ackedSet records, per key, the values a read may find: the last
// acknowledged one, and every one whose write failed. A failed write may
// still apply, even after a later acknowledged one (a forward still in
// flight when the client gave up), so none of those can be ruled out.
type ackedSet struct {
	mu            sync.Mutex
	acked         map[string]string
	failed        map[string][]string
	acks, unknown int
}

func (a *ackedSet) add(k, v string) {
	a.mu.Lock()
	a.acked[k] = v
	a.acks++
	a.mu.Unlock()
}

func (a *ackedSet) fail(k, v string) {
	a.mu.Lock()
	a.failed[k] = append(a.failed[k], v)
	a.unknown++
	a.mu.Unlock()
}

func (a *ackedSet) counts() (int, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.acks, a.unknown
}

// missing reads every acknowledged key back (linearizable, one writer's
// prefix at a time) and lists those whose value is none of the possible.
func (a *ackedSet) missing(ctx context.Context, cli *clientv3.Client) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	got := map[string]string{}
	prefixes := map[string]bool{}
	for k := range a.acked {
		prefixes[k[:strings.Index(k, "/")+1]] = true
	}
	for p := range prefixes {
		resp, err := cli.Get(ctx, p, clientv3.WithPrefix())
		if err != nil {
			return []string{fmt.Sprintf("read %s*: %v", p, err)}
		}
		for _, kv := range resp.Kvs {
			got[string(kv.Key)] = string(kv.Value)
		}
	}
	var lost []string
	for k, want := range a.acked {
		v, ok := got[k]
		if !ok || (v != want && !slices.Contains(a.failed[k], v)) {
			lost = append(lost, fmt.Sprintf("%s (read %.24q, acknowledged %.24q)", k, v, want))
		}
	}
	return lost
}

// tortureKeys is how many keys each writer cycles through: the store
// stays a few megabytes, so snapshots stay quick, however long the run.
const tortureKeys = 200

// writeUntil puts values naming their key and sequence number over the
// writer's own keys until ctx ends.
func writeUntil(ctx context.Context, cli *clientv3.Client, w int, acked *ackedSet) {
	pad := strings.Repeat("x", tortureValue)
	for seq := 0; ctx.Err() == nil; seq++ {
		k := fmt.Sprintf("t%02d/%04d", w, seq%tortureKeys)
		v := fmt.Sprintf("%s#%d %s", k, seq, pad)
		wctx, cancel := context.WithTimeout(ctx, tortureTimeout)
		_, err := cli.Put(wctx, k, v)
		cancel()
		// A write cut short when the run stops may have applied too.
		if err == nil {
			acked.add(k, v)
		} else {
			acked.fail(k, v)
		}
	}
}

// killLoop kills a member cfg.Kills times. A quarter of the kills are at
// a random instant, the rest wait (at most momentWait) for a segment cut,
// a snapshot or a compaction on the chosen member and kill it then. The
// member restarts at once, and the next kill waits for the cluster to be
// whole again: killing two of three would only stop the writes.
func killLoop(ctx context.Context, c *Cluster, cli *clientv3.Client, cfg TortureConfig, rng *rand.Rand, rep *TortureReport) error {
	moments := []string{MomentRandom, MomentCut, MomentSnapshot, MomentCompaction}
	for k := 0; k < cfg.Kills; k++ {
		lead, err := c.WaitHealthy(ctx, cli, tortureHealthy)
		if err != nil {
			return fmt.Errorf("before kill %d: %w", k+1, err)
		}
		victim := c.Members[rng.IntN(len(c.Members))]
		if rng.IntN(3) == 0 {
			victim = c.Members[lead] // the leader a third of the time
		}
		want := moments[k%len(moments)]
		got := MomentRandom
		if want == MomentRandom {
			sleep(ctx, time.Duration(rng.IntN(300))*time.Millisecond)
		} else if waitMoment(ctx, victim.DataDir, want) {
			got = want
		} else {
			rep.Missed++
		}
		victim.kill()
		rep.Kills++
		rep.ByMoment[got]++
		cfg.Log.Info("killed", "kill", k+1, "member", victim.Name, "moment", got)
		if err := victim.start(); err != nil {
			return fmt.Errorf("restart %s after kill %d: %w", victim.Name, k+1, err)
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// waitMoment polls a member's data dir until it shows the moment, and
// reports false if momentWait passes first.
func waitMoment(ctx context.Context, dataDir, moment string) bool {
	logDir := filepath.Join(dataDir, "raftlog")
	snapDir := filepath.Join(dataDir, "snapshots")
	deadline := time.Now().Add(momentWait)
	segs0, _ := countFiles(logDir, ".wal")
	tmps0, _ := countFiles(snapDir, ".tmp")
	for time.Now().Before(deadline) && ctx.Err() == nil {
		segs, _ := countFiles(logDir, ".wal")
		tmps, _ := countFiles(snapDir, ".tmp")
		switch moment {
		case MomentCut:
			// etcd's WAL renames the preallocated file into the new segment,
			// then its pipeline preallocates the next one.
			if segs > segs0 {
				return true
			}
		case MomentSnapshot:
			if tmps > 0 {
				return true
			}
		case MomentCompaction:
			// The snapshot's .tmp dir is renamed when it is complete;
			// hashicorp/raft compacts the log right after.
			if tmps < tmps0 {
				return true
			}
			tmps0 = tmps
		}
		segs0 = min(segs0, segs)
		time.Sleep(pollEvery)
	}
	return false
}

// countFiles counts dir's entries with the suffix, and the preallocated
// ".tmp" files etcd's WAL keeps beside its segments.
func countFiles(dir, suffix string) (n, tmp int) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0
	}
	for _, e := range ents {
		switch name := e.Name(); {
		case strings.HasSuffix(name, suffix):
			n++
		case strings.HasSuffix(name, ".tmp"):
			tmp++
		}
	}
	return n, tmp
}

// agreedHash waits until every member has applied the same index, then
// asks each for HashKV at the same revision: all must agree.
func agreedHash(ctx context.Context, c *Cluster, cli *clientv3.Client) (int64, uint32, error) {
	// A write after the load marks a revision every member will reach.
	resp, err := cli.Put(ctx, "torture/marker", time.Now().String())
	if err != nil {
		return 0, 0, fmt.Errorf("marker write: %w", err)
	}
	rev := resp.Header.Revision
	var hashes []string
	var first uint32
	for i, m := range c.Members {
		mcli, err := c.memberClient(m)
		if err != nil {
			return rev, 0, err
		}
		// A linearizable read first: the member has applied rev.
		if _, err := mcli.Get(ctx, "torture/marker"); err != nil {
			mcli.Close()
			return rev, 0, fmt.Errorf("%s: %w", m.Name, err)
		}
		h, err := mcli.HashKV(ctx, m.ClientAddr, rev)
		mcli.Close()
		if err != nil {
			return rev, 0, fmt.Errorf("HashKV of %s at %d: %w", m.Name, rev, err)
		}
		hashes = append(hashes, fmt.Sprintf("%s=%08x", m.Name, h.Hash))
		if i == 0 {
			first = h.Hash
		} else if h.Hash != first {
			return rev, 0, fmt.Errorf("members disagree at revision %d: %s", rev, strings.Join(hashes, " "))
		}
	}
	return rev, first, nil
}

// countRepairs counts the torn segments etcd's Repair kept (.broken).
func countRepairs(c *Cluster) int {
	n := 0
	for _, m := range c.Members {
		b, _ := filepath.Glob(filepath.Join(m.DataDir, "raftlog", "*.broken"))
		n += len(b)
	}
	return n
}
