package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/barge-dev/barge/node/gossip"
	"github.com/barge-dev/barge/raftstore"
	"github.com/barge-dev/barge/raftstore/storetest"
	"google.golang.org/grpc"
)

// startGossipMember starts a member with its own copy of the keyring.
func startGossipMember(t *testing.T, name string, role gossip.Role, keyring string, join ...string) *gossip.Pool {
	t.Helper()
	data, err := os.ReadFile(keyring)
	if err != nil {
		t.Fatal(err)
	}
	own := filepath.Join(t.TempDir(), gossip.KeyringFile)
	if err := os.WriteFile(own, data, 0o600); err != nil {
		t.Fatal(err)
	}
	lan, _ := gossip.TimingProfile(gossip.ProfileLAN) // patient on a busy machine
	p, err := gossip.Start(gossip.Config{
		Name: name, Role: role, BindAddr: "127.0.0.1", Port: 0, KeyringFile: own, Join: join, Timing: lan,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown() })
	return p
}

func TestGossipCLI(t *testing.T) {
	keyring, _, err := gossip.InitKeyring(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s1 := startGossipMember(t, "s1", gossip.RoleServer, keyring)
	c := storetest.NewCluster(t, 1, storetest.WithConfig(func(cfg *raftstore.Config) {
		cfg.RegisterServices = func(s *grpc.Server) { gossip.RegisterAdmin(s, s1) }
	}))
	startGossipMember(t, "a1", gossip.RoleAgent, keyring, s1.Addr().String())
	ms, sub := s1.Subscribe()
	for len(ms) < 2 {
		select {
		case <-sub.C():
			ms = s1.Members()
		case <-time.After(time.Minute):
			t.Fatal("a1 did not join")
		}
	}
	sub.Close()

	flags := []string{"--endpoints", "https://" + c.Endpoints()[0], "--certs", c.CertsDir}
	run := func(args ...string) (string, error) {
		out, err := exec.Command(bargeBin, append(append([]string{"gossip"}, args...), flags...)...).CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("barge gossip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	var infos []gossip.MemberInfo
	if err := json.Unmarshal([]byte(must("members", "-o", "json")), &infos); err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || infos[0].Name != "a1" || infos[0].Role != gossip.RoleAgent || infos[1].Name != "s1" || infos[1].State != gossip.StateAlive {
		t.Fatalf("members: %+v", infos)
	}
	table := must("members")
	if !strings.Contains(table, "NAME") || !strings.Contains(table, "a1") || !strings.Contains(table, "alive") {
		t.Fatalf("members table:\n%s", table)
	}

	k1 := s1.Keys()[0]
	out, err := exec.Command(bargeBin, "gossip", "keygen").Output()
	if err != nil {
		t.Fatal(err)
	}
	k2 := strings.TrimSpace(string(out))
	if _, err := gossip.ParseKey(k2); err != nil {
		t.Fatalf("keygen printed %q: %v", k2, err)
	}
	if out := must("keyring", "install", k2); !strings.Contains(out, "install: 2/2 members ok") {
		t.Fatalf("install:\n%s", out)
	}
	out2 := must("keyring", "use", k2)
	found := false
	for _, line := range strings.Split(out2, "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == k2 {
			found = f[1] == "2/2" && f[2] == "2/2"
		}
	}
	if !found {
		t.Fatalf("use: want %s installed and primary on 2/2:\n%s", k2, out2)
	}
	// The old primary can go now; the new one cannot.
	if out, err := run("keyring", "remove", k2); err == nil || !strings.Contains(out, "primary key") {
		t.Fatalf("removing the primary key: %v\n%s", err, out)
	}
	must("keyring", "remove", k1)
	var res gossip.KeyringResult
	if err := json.Unmarshal([]byte(must("keyring", "list", "-o", "json")), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Keys) != 1 || res.Keys[0] != (gossip.KeyCount{Key: k2, Installed: 2, Primary: 2}) {
		t.Fatalf("list after rotation: %+v", res)
	}

	for _, bad := range [][]string{
		{"keyring"},
		{"keyring", "install"},
		{"keyring", "list", k2},
		{"keyring", "install", "bm90IGEga2V5"},
		{"members", "-o", "yaml"},
	} {
		if out, err := run(bad...); err == nil {
			t.Errorf("barge gossip %s succeeded:\n%s", strings.Join(bad, " "), out)
		}
	}

	// The environment works as the flags do.
	cmd := exec.Command(bargeBin, "gossip", "members")
	cmd.Env = append(os.Environ(), "BARGE_ENDPOINTS=https://"+c.Endpoints()[0], "BARGE_CERTS="+c.CertsDir)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "s1") {
		t.Fatalf("members from the environment: %v\n%s", err, out)
	}
}

func TestGossipCLINoPool(t *testing.T) {
	c := storetest.NewCluster(t, 1)
	out, err := exec.Command(bargeBin, "gossip", "members", "--endpoints", "https://"+c.Endpoints()[0], "--certs", c.CertsDir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "runs no gossip pool") {
		t.Fatalf("a server without gossip: %v\n%s", err, out)
	}
}

// TestServerGossip: `barge server --gossip-addr` servers form a pool with
// the key `barge certs init` wrote, an agent joins with it, and `barge
// gossip members -o json` on any server lists all of them with their
// roles.
func TestServerGossip(t *testing.T) {
	pc := startProcessCluster(t, 3, withGossip())
	startGossipMember(t, "node-1", gossip.RoleAgent, filepath.Join(pc.certs, gossip.KeyringFile), pc.procs[1].gossip)
	want := map[string]gossip.Role{"s1": gossip.RoleServer, "s2": gossip.RoleServer, "s3": gossip.RoleServer, "node-1": gossip.RoleAgent}
	deadline := time.Now().Add(60 * time.Second)
	for _, p := range pc.procs {
		for {
			out, err := exec.Command(bargeBin, "gossip", "members", "-o", "json", "--endpoints", "https://"+p.client, "--certs", pc.certs).Output()
			var infos []gossip.MemberInfo
			got := map[string]gossip.Role{}
			if err == nil && json.Unmarshal(out, &infos) == nil {
				for _, i := range infos {
					if i.State == gossip.StateAlive {
						got[i.Name] = i.Role
					}
				}
			}
			if maps.Equal(got, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: members %v (%v), want %v alive", p.name, got, err, want)
			}
			time.Sleep(200 * time.Millisecond) // polling an external process; no event to wait on
		}
	}
}
