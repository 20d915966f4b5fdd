package raftstore_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/barge-dev/barge/raftstore"
	"github.com/barge-dev/barge/raftstore/pki"
	"github.com/barge-dev/barge/raftstore/storetest"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestMetricsRegisterer checks the figures a registry passed in Config
// receives after writes, a watch and a snapshot on a one-peer cluster.
func TestMetricsRegisterer(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := storetest.NewCluster(t, 1, storetest.WithConfig(func(cfg *raftstore.Config) { cfg.Registerer = reg }))
	ctx := c.Ctx()
	cli := c.Client()
	wch := cli.Watch(ctx, "m/", clientv3.WithPrefix())
	for i := range 20 {
		if _, err := cli.Put(ctx, fmt.Sprintf("m/%d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	// The watch has seen the last put once it delivers event 20: the
	// watcher is registered and counted.
	for n := 0; n < 20; {
		resp := <-wch
		if err := resp.Err(); err != nil {
			t.Fatal(err)
		}
		n += len(resp.Events)
	}
	if err := c.Members[0].Server.TakeSnapshot(); err != nil {
		t.Fatal(err)
	}
	got := gather(t, reg)
	for name, atLeast := range map[string]float64{
		"barge_store_commit_duration_seconds":     20,
		"barge_store_apply_duration_seconds":      20,
		"barge_disk_log_fsync_duration_seconds":   20,
		"barge_snapshot_save_duration_seconds":    1,
		"barge_raft_leader_changes_seen_total":    1,
		"barge_raft_is_leader":                    1,
		"barge_raft_has_leader":                   1,
		"barge_watch_watchers":                    1,
		"barge_store_revision":                    21,
		"barge_store_db_size_bytes":               1,
		"barge_store_db_size_in_use_bytes":        1,
		"barge_raft_applied_index":                20,
		"barge_store_proposals_failed_total":      0,
		"barge_store_proposals_forwarded_total":   0,
		"barge_watch_slow_watchers_total":         0,
		"barge_watch_unsynced_watchers":           0,
		"barge_snapshot_install_duration_seconds": 0,
	} {
		v, ok := got[name]
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if v < atLeast {
			t.Errorf("%s = %v, want at least %v", name, v, atLeast)
		}
	}
}

// gather returns each metric's value: a histogram's sample count.
func gather(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			out[mf.GetName()] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

// TestMetricsPort scrapes a follower's metrics port over TLS: it counts
// the writes it forwarded, and refuses a scraper without a client
// certificate from the cluster CA.
func TestMetricsPort(t *testing.T) {
	c := storetest.NewCluster(t, 3, storetest.WithConfig(func(cfg *raftstore.Config) { cfg.MetricsAddr = "127.0.0.1:0" }))
	ctx := c.Ctx()
	follower := (c.Leader() + 1) % 3
	cli := c.Client(follower)
	for i := range 5 {
		c.Retry(func() error {
			_, err := cli.Put(ctx, fmt.Sprintf("p/%d", i), "v")
			return err
		})
	}
	url := "https://" + c.Members[follower].Server.MetricsAddr() + "/metrics"
	tlsCfg, err := pki.ClientTLS(c.CertsDir)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	page := string(body)
	for _, want := range []string{"barge_store_proposals_forwarded_total", "barge_disk_log_fsync_duration_seconds_bucket", "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(page, want) {
			t.Errorf("metrics page lacks %s", want)
		}
	}
	var forwarded float64
	for _, line := range strings.Split(page, "\n") {
		if strings.HasPrefix(line, "barge_store_proposals_forwarded_total ") {
			fmt.Sscan(strings.TrimPrefix(line, "barge_store_proposals_forwarded_total "), &forwarded)
		}
	}
	if forwarded < 5 {
		t.Errorf("follower forwarded %v writes, want at least 5", forwarded)
	}

	noCert := tlsCfg.Clone()
	noCert.Certificates = nil
	noCert.GetClientCertificate = nil
	hc = &http.Client{Transport: &http.Transport{TLSClientConfig: noCert}}
	if resp, err := hc.Get(url); err == nil {
		resp.Body.Close()
		t.Fatalf("scrape without a client certificate got %s", resp.Status)
	}
}
