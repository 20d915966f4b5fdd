package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// StarveConfig is one run of the CPU-starvation measurement: a 3-peer
// barge cluster under write load while a separate process keeps every
// core busy, counting the elections that provokes, then timing leader
// kills under the same hog.
type StarveConfig struct {
	BargeBin   string
	Dir        string
	BargeFlags []string
	// Hog is the number of busy-looping goroutines of the hog process
	// (0: no hog); HogNice its nice value (0: as the servers).
	Hog, HogNice int
	Duration     time.Duration // of the write load
	Clients      int           // writers, each putting back to back
	Kills        int           // leader kills under the hog, after the load
	Log          *slog.Logger
}

// StarveReport is what a starvation run measured.
type StarveReport struct {
	Hog        int            `json:"hog"`
	HogNice    int            `json:"hogNice"`
	Flags      []string       `json:"flags,omitempty"`
	Duration   string         `json:"duration"`
	Puts       int            `json:"puts"`
	PutErrors  int            `json:"putErrors"`
	ErrorKinds map[string]int `json:"errorKinds,omitempty"` // put errors by message
	Elections  uint64         `json:"elections"`            // term rises during the load
	P99Ms      float64        `json:"p99Ms"`
	MaxMs      float64        `json:"maxMs"`
	Failover   FailoverResult `json:"failover"`
	HogCPUSecs float64        `json:"hogCpuSecs"` // CPU the hog got during the load
}

// Starve runs the measurement. The hog is `barge bench cpu-hog`, a
// process of its own, as another tenant of the machine would be.
func Starve(ctx context.Context, cfg StarveConfig) (*StarveReport, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clients == 0 {
		cfg.Clients = 16
	}
	certs := filepath.Join(cfg.Dir, "certs")
	if out, err := exec.CommandContext(ctx, cfg.BargeBin, "certs", "init", "--dir", certs, "--hosts", "127.0.0.1").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("barge certs init: %w: %s", err, out)
	}
	c, err := NewBargeCluster(cfg.BargeBin, cfg.Dir, certs, cfg.BargeFlags, cfg.Log)
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
	rep := &StarveReport{Hog: cfg.Hog, HogNice: cfg.HogNice, Flags: cfg.BargeFlags, Duration: cfg.Duration.String()}
	var hog *exec.Cmd
	if cfg.Hog > 0 {
		hog = exec.Command(cfg.BargeBin, "bench", "cpu-hog", "--goroutines", strconv.Itoa(cfg.Hog))
		if err := hog.Start(); err != nil {
			return nil, fmt.Errorf("start the hog: %w", err)
		}
		defer func() { _ = hog.Process.Kill(); _ = hog.Wait() }()
		if cfg.HogNice != 0 {
			if err := syscall.Setpriority(syscall.PRIO_PROCESS, hog.Process.Pid, cfg.HogNice); err != nil {
				return nil, fmt.Errorf("renice the hog: %w", err)
			}
		}
	}
	before, err := c.term(ctx, cli)
	if err != nil {
		return nil, err
	}
	hog0 := procCPU(hog)
	lat, puts, kinds := putLoad(ctx, cli, cfg.Clients, cfg.Duration)
	errs := 0
	for _, n := range kinds {
		errs += n
	}
	rep.ErrorKinds = kinds
	rep.HogCPUSecs = (procCPU(hog) - hog0).Seconds()
	after, err := c.term(ctx, cli)
	if err != nil {
		return nil, err
	}
	rep.Elections, rep.Puts, rep.PutErrors = after-before, puts, errs
	l := Summarize(lat)
	rep.P99Ms, rep.MaxMs = ms(l.P99), ms(l.Max)
	cfg.Log.Info("load under the hog", "hog", cfg.Hog, "nice", cfg.HogNice, "puts", puts, "errors", kinds, "elections", rep.Elections, "p99Ms", rep.P99Ms, "maxMs", rep.MaxMs, "hogCPUs", rep.HogCPUSecs)
	if cfg.Kills > 0 {
		rep.Failover, err = Failover(ctx, c, cli, cfg.Kills)
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// putLoad puts back to back from clients goroutines for d and returns
// every latency, the puts acknowledged and the errors by message.
func putLoad(ctx context.Context, cli *clientv3.Client, clients int, d time.Duration) ([]time.Duration, int, map[string]int) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	type result struct {
		lat  []time.Duration
		errs map[string]int
	}
	out := make(chan result, clients)
	for w := range clients {
		go func() {
			r := result{errs: map[string]int{}}
			for i := 0; ctx.Err() == nil; i++ {
				start := time.Now()
				wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := cli.Put(wctx, fmt.Sprintf("starve/%02d/%d", w, i%100), "v")
				wcancel()
				switch {
				case err == nil:
					r.lat = append(r.lat, time.Since(start))
				case ctx.Err() == nil:
					r.errs[err.Error()]++
				}
			}
			out <- r
		}()
	}
	var lat []time.Duration
	errs := map[string]int{}
	for range clients {
		r := <-out
		lat = append(lat, r.lat...)
		for k, n := range r.errs {
			errs[k] += n
		}
	}
	return lat, len(lat), errs
}

// procCPU is the CPU time a process has used so far, 0 without one.
func procCPU(cmd *exec.Cmd) time.Duration {
	if cmd == nil || cmd.Process == nil {
		return 0
	}
	d, err := pidCPU(cmd.Process.Pid)
	if err != nil {
		return 0
	}
	return d
}

// Hog busy-loops on n goroutines until ctx ends: the CPU hog of Starve.
func Hog(ctx context.Context, n int) {
	runtime.GOMAXPROCS(max(n, runtime.GOMAXPROCS(0)))
	for range n {
		go func() {
			x := 0
			for ctx.Err() == nil {
				for i := 0; i < 1_000_000; i++ {
					x += i
				}
			}
			_ = x
		}()
	}
	<-ctx.Done()
}
