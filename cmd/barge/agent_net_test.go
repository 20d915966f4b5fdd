package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/barge-dev/barge/node/gossip"
	"github.com/barge-dev/barge/raftstore/pki"
)

func TestAgentNetworkFlags(t *testing.T) {
	dir := t.TempDir()
	keyring, _, err := gossip.InitKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		addr     string
		keyring  string
		mode     string
		cluster  string
		upstream []string
		wantErr  bool
		wantBind string
		wantPort int
	}{
		{name: "defaults: node IP, port 7946, vxlan", mode: "vxlan", wantBind: "10.0.0.11", wantPort: gossip.DefaultPort},
		{name: "IP only", addr: "10.0.0.99", mode: "ipip", wantBind: "10.0.0.99", wantPort: gossip.DefaultPort},
		{name: "IP and port", addr: "10.0.0.11:8000", mode: "none", wantBind: "10.0.0.11", wantPort: 8000},
		{name: "upstreams with and without port", mode: "vxlan", upstream: []string{"1.1.1.1", "9.9.9.9:5353"}, wantBind: "10.0.0.11", wantPort: gossip.DefaultPort},
		{name: "bad port", addr: "10.0.0.11:0", mode: "vxlan", wantErr: true},
		{name: "not an IP", addr: "node1:7946", mode: "vxlan", wantErr: true},
		{name: "unknown overlay", mode: "geneve", wantErr: true},
		{name: "missing keyring", mode: "vxlan", keyring: filepath.Join(dir, "nope.json"), wantErr: true},
		{name: "bad cluster CIDR", mode: "vxlan", cluster: "10.244.0.0", wantErr: true},
		{name: "bad upstream", mode: "vxlan", upstream: []string{"dns.example"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kr := keyring
			if tc.keyring != "" {
				kr = tc.keyring
			}
			cluster := "10.244.0.0/16"
			if tc.cluster != "" {
				cluster = tc.cluster
			}
			nw, err := agentNetwork("10.0.0.11", tc.addr, "", kr, gossip.ProfileBarge, []string{"10.0.0.1:7946"}, tc.mode, cluster, "10.96.0.0/16", tc.upstream)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("no error for %+v", tc)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if nw.gossip.BindAddr != tc.wantBind || nw.gossip.Port != tc.wantPort || !slices.Equal(nw.gossip.Join, []string{"10.0.0.1:7946"}) {
				t.Errorf("gossip %+v", nw.gossip)
			}
			if (nw.overlay == nil) != (tc.mode == "none") || (nw.overlay != nil && string(nw.overlay.Mode) != tc.mode) {
				t.Errorf("overlay %+v for --overlay %s", nw.overlay, tc.mode)
			}
			if len(nw.services.DNSUpstreams) != len(tc.upstream) {
				t.Errorf("upstreams %v", nw.services.DNSUpstreams)
			}
		})
	}
}

// barge certs node hands the node the cluster's gossip keyring, and
// refuses a certificate directory without one.
func TestCertsNodeCopiesKeyring(t *testing.T) {
	dir := t.TempDir()
	if err := pki.InitDir(dir, pki.InitOptions{Hosts: []string{"127.0.0.1"}, APIPort: 6443}); err != nil {
		t.Fatal(err)
	}
	certsNode := func() error {
		cmd := newCertsNodeCmd()
		cmd.SetArgs([]string{"--dir", dir, "--name", "w1", "--ip", "10.0.0.11", "--force"})
		cmd.SetOut(os.Stderr)
		cmd.SilenceUsage = true
		return cmd.Execute()
	}
	if err := certsNode(); err == nil {
		t.Fatal("certs node without a gossip keyring in --dir: no error")
	}
	if _, _, err := gossip.InitKeyring(dir); err != nil {
		t.Fatal(err)
	}
	if err := certsNode(); err != nil {
		t.Fatal(err)
	}
	want, err := gossip.ReadKeyring(filepath.Join(dir, gossip.KeyringFile))
	if err != nil {
		t.Fatal(err)
	}
	got, err := gossip.ReadKeyring(filepath.Join(dir, "nodes", "w1", gossip.KeyringFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || string(got[0]) != string(want[0]) {
		t.Errorf("node keyring %d keys, want the cluster's %d", len(got), len(want))
	}
}
