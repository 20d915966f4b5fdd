package lab_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/barge-dev/barge/chaos/lab"
	"github.com/barge-dev/barge/chaos/labtest"
	"github.com/barge-dev/barge/raftstore/pki"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// bargeBin is the barge binary TestMain builds; servers in the lab run it.
var bargeBin string

func TestMain(m *testing.M) { os.Exit(labtest.Main(m, &bargeBin)) }

func requireRoot(t *testing.T) { labtest.RequireRoot(t) }

func up(t *testing.T, dir string, servers int) *lab.Lab {
	t.Helper()
	return labtest.Up(t, lab.Config{Dir: dir, Servers: servers, Barge: bargeBin, Logger: testLogger(t)})
}

// assertGone checks that no namespace or root veth of the lab is left.
func assertGone(t *testing.T, id string) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	if strings.Contains(string(out), "bg"+id+"-") {
		t.Errorf("namespaces of lab %s left:\n%s", id, out)
	}
	if err := exec.Command("ip", "link", "show", "dev", "bg"+id+"r").Run(); err == nil {
		t.Errorf("root veth bg%sr left", id)
	}
}

func client(t *testing.T, l *lab.Lab) *clientv3.Client {
	t.Helper()
	tlsCfg, err := pki.ClientTLS(l.Certs)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: l.Endpoints, TLS: tlsCfg, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// putGet writes and reads back a key, retrying while the cluster settles
// (a client may first pick a partitioned or restarting endpoint).
func putGet(t *testing.T, cli *clientv3.Client, key, val string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := cli.Put(ctx, key, val)
		var resp *clientv3.GetResponse
		if err == nil {
			resp, err = cli.Get(ctx, key)
		}
		cancel()
		if err == nil {
			if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != val {
				t.Fatalf("get %s: %v, want %q", key, resp.Kvs, val)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("put/get %s: %v", key, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (last: %s)", what, timeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitLeader returns the leader, waiting through an election: on a busy
// machine a heartbeat can miss and the servers elect again at any time.
func waitLeader(t *testing.T, l *lab.Lab) string {
	t.Helper()
	var leader string
	waitFor(t, "a leader", 60*time.Second, func() (bool, string) {
		ld, err := l.Leader(context.Background())
		if err != nil {
			return false, err.Error()
		}
		leader = ld
		return true, ""
	})
	return leader
}

func hostStatus(t *testing.T, l *lab.Lab, name string) lab.HostStatus {
	t.Helper()
	st, err := l.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no status for %s", name)
	return lab.HostStatus{}
}

func TestLab(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	dir := t.TempDir()
	l := up(t, dir, 3)

	// lab.json describes what was made, and a later process can load it.
	var state struct {
		ID        string     `json:"id"`
		Endpoints []string   `json:"endpoints"`
		Hosts     []lab.Host `json:"hosts"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "lab.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &state); err != nil {
		t.Fatal(err)
	}
	if len(state.Hosts) != 3 || len(state.Endpoints) != 3 || state.ID != l.ID {
		t.Fatalf("lab.json: %s", b)
	}
	for _, h := range state.Hosts {
		if h.PID == 0 || h.Netns != "bg"+l.ID+"-"+h.Name {
			t.Errorf("lab.json host %+v", h)
		}
	}
	if kc, err := os.ReadFile(filepath.Join(dir, "admin.kubeconfig")); err != nil || !strings.Contains(string(kc), state.Hosts[0].APIAddr) {
		t.Errorf("admin.kubeconfig does not name %s (err %v)", state.Hosts[0].APIAddr, err)
	}
	if l2, err := lab.Load(dir); err != nil || len(l2.Hosts) != 3 {
		t.Fatalf("load: %v", err)
	}

	// Every server runs, and (once any election in progress is over)
	// exactly one reports itself leader; on a loaded machine a status
	// call can time out for a moment, so this is polled.
	waitFor(t, "one leader among running servers", 60*time.Second, func() (bool, string) {
		st, err := l.Status(ctx)
		if err != nil {
			return false, err.Error()
		}
		leaders := 0
		for _, s := range st {
			if s.State != lab.StateRunning {
				t.Fatalf("%s: state %s", s.Name, s.State)
			}
			if s.Raft == lab.RaftLeader {
				leaders++
			}
		}
		return leaders == 1, fmt.Sprintf("%d leaders: %+v", leaders, st)
	})

	cli := client(t, l)
	putGet(t, cli, "k", "v1")

	// Exec runs inside the host: it sees the host's eth0 and address.
	if out, err := l.Exec(ctx, "s2", []string{"ip", "-4", "-o", "addr", "show", "dev", "eth0"}).CombinedOutput(); err != nil || !strings.Contains(string(out), state.Hosts[1].Address+"/24") {
		t.Errorf("exec in s2: %v: %s", err, out)
	}
	// The root namespace got exactly the lab's on-link route.
	if out, err := exec.Command("ip", "-4", "route", "show", "dev", "bg"+l.ID+"r").CombinedOutput(); err != nil || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 || !strings.HasPrefix(string(out), l.Subnet+" ") {
		t.Errorf("root routes via the lab veth: %v: %q", err, out)
	}

	// Partitioning the leader from everyone makes the others elect anew.
	old := waitLeader(t, l)
	if err := l.Partition([]string{old}, nil, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "new leader after partitioning "+old, 60*time.Second, func() (bool, string) {
		ld, err := l.Leader(ctx)
		return err == nil && ld != old, fmt.Sprintf("%s %v", ld, err)
	})
	putGet(t, cli, "k", "v2")
	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := l.Heal(); err != nil {
		t.Fatalf("second heal: %v", err)
	}

	// A killed follower restarts from its data directory and rejoins.
	leader := waitLeader(t, l)
	var follower string
	for _, s := range l.Servers() {
		if s != leader {
			follower = s
			break
		}
	}
	if err := l.Kill(follower); err != nil {
		t.Fatal(err)
	}
	if s := hostStatus(t, l, follower); s.State != lab.StateStopped || s.Raft != lab.RaftUnreachable {
		t.Fatalf("after kill: %+v", s)
	}
	putGet(t, cli, "k", "v3")
	if err := l.Start(follower); err != nil {
		t.Fatal(err)
	}
	waitFor(t, follower+" rejoins", 60*time.Second, func() (bool, string) {
		s := hostStatus(t, l, follower)
		return s.State == lab.StateRunning && s.Raft == lab.RaftFollower, fmt.Sprintf("%+v", s)
	})

	if err := l.Pause(follower); err != nil {
		t.Fatal(err)
	}
	if s := hostStatus(t, l, follower); s.State != lab.StatePaused || s.Raft != lab.RaftUnreachable {
		t.Fatalf("after pause: %+v", s)
	}
	putGet(t, cli, "k", "v4")
	if err := l.Resume(follower); err != nil {
		t.Fatal(err)
	}
	waitFor(t, follower+" resumes", 60*time.Second, func() (bool, string) {
		s := hostStatus(t, l, follower)
		return s.State == lab.StateRunning && s.Raft == lab.RaftFollower, fmt.Sprintf("%+v", s)
	})

	// A second lab in another directory has its own names and subnet.
	dir2 := t.TempDir()
	l2 := up(t, dir2, 1)
	if l2.ID == l.ID || l2.Subnet == l.Subnet {
		t.Fatalf("labs share ID or subnet: %s %s / %s %s", l.ID, l.Subnet, l2.ID, l2.Subnet)
	}
	putGet(t, client(t, l2), "other", "lab")
	putGet(t, cli, "k", "v5")

	for _, d := range []string{dir, dir2} {
		if err := lab.Down(d); err != nil {
			t.Fatalf("down %s: %v", d, err)
		}
	}
	assertGone(t, l.ID)
	assertGone(t, l2.ID)
	if _, err := os.Stat(filepath.Join(dir, "lab.json")); !os.IsNotExist(err) {
		t.Errorf("lab.json left: %v", err)
	}
	if err := lab.Down(dir); err != nil {
		t.Fatalf("second down: %v", err)
	}
}

// TestDownAfterCrash: without lab.json, Down still finds the namespaces
// and the processes in them from the directory's name.
func TestDownAfterCrash(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	l := up(t, dir, 1)
	pid := l.Hosts[0].PID
	if err := os.Remove(filepath.Join(dir, "lab.json")); err != nil {
		t.Fatal(err)
	}
	if err := lab.Down(dir); err != nil {
		t.Fatal(err)
	}
	assertGone(t, l.ID)
	if _, err := os.Stat(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); !strings.Contains(string(b), ") Z") {
			t.Errorf("server pid %d still alive: %s", pid, b)
		}
	}
}
