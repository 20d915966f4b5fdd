package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/barge-dev/barge/raftstore/loopport"
)

// These tests run the real binary as separate processes and judge it with
// Debian's etcdctl, a client nobody here wrote.

// bargeBin is this package built; builtKubectl is kubectl built from the
// pinned k8s.io/kubernetes, a client at the served version.
var bargeBin, builtKubectl string

// builtKubectlVersion names the built kubectl among kubectlVersions.
const builtKubectlVersion = "served"

// kubernetesModuleVersion is the pinned k8s.io/kubernetes (v1.37.2): the
// served version, and the built kubectl's.
var kubernetesModuleVersion string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "barge-e2e")
	if err != nil {
		panic(err)
	}
	bargeBin = filepath.Join(dir, "barge")
	builtKubectl = filepath.Join(dir, "kubectl")
	mod, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "k8s.io/kubernetes").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go list -m k8s.io/kubernetes:", err)
		os.Exit(1)
	}
	kubernetesModuleVersion = strings.TrimSpace(string(mod))
	major, minor, _ := strings.Cut(strings.TrimPrefix(kubernetesModuleVersion, "v"), ".")
	minor, _, _ = strings.Cut(minor, ".")
	// Kubernetes' own build stamps the version in with these flags.
	const v = "k8s.io/component-base/version."
	ldflags := "-X " + v + "gitVersion=" + kubernetesModuleVersion + " -X " + v + "gitMajor=" + major + " -X " + v + "gitMinor=" + minor
	// Both builds share most packages; go build runs them side by side.
	builds := []*exec.Cmd{
		exec.Command("go", "build", "-o", bargeBin, "."),
		exec.Command("go", "build", "-ldflags", ldflags, "-o", builtKubectl, "k8s.io/kubernetes/cmd/kubectl"),
	}
	errs := make(chan error, len(builds))
	for _, b := range builds {
		go func() {
			if out, err := b.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("%s: %v\n%s", strings.Join(b.Args, " "), err, out)
				return
			}
			errs <- nil
		}()
	}
	for range builds {
		if err := <-errs; err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireTool finds an external client or fails/skips: `make test`
// installs it, so in CI (BARGE_REQUIRE_ROOT=1) its absence is a failure.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("BARGE_REQUIRE_ROOT") == "1" {
		t.Fatalf("%s not found; `make test` installs it", name)
	}
	t.Skipf("%s not found (run `make test`, which installs it)", name)
	return ""
}

type proc struct {
	name   string
	cmd    *exec.Cmd
	client string
	api    string // Kubernetes API address; empty unless withAPIServers
	gossip string // gossip address; empty unless withGossip
	log    *bytes.Buffer
}

type processCluster struct {
	t      *testing.T
	dir    string
	certs  string
	procs  []*proc
	api    bool
	gossip bool
}

// processOption adjusts a cluster before its processes start.
type processOption func(*processCluster)

// withGossip makes every peer join one gossip pool (--gossip-addr on a
// free loopback port, kept in proc.gossip; the others join the first).
func withGossip() processOption {
	return func(pc *processCluster) { pc.gossip = true }
}

// withAPIServers makes every peer also serve the Kubernetes API
// (--api-addr on a free loopback port, kept in proc.api).
func withAPIServers() processOption {
	return func(pc *processCluster) { pc.api = true }
}

func startProcessCluster(t *testing.T, n int, opts ...processOption) *processCluster {
	t.Helper()
	dir := t.TempDir()
	pc := &processCluster{t: t, dir: dir, certs: filepath.Join(dir, "certs")}
	for _, o := range opts {
		o(pc)
	}
	mustRun(t, bargeBin, "certs", "init", "--dir", pc.certs, "--hosts", "127.0.0.1")
	var initial []string
	peers := make([]string, n)
	for i := range peers {
		peers[i] = loopport.Addr(t)
		initial = append(initial, fmt.Sprintf("s%d=%s", i+1, peers[i]))
	}
	for i := 0; i < n; i++ {
		p := &proc{name: fmt.Sprintf("s%d", i+1), client: loopport.Addr(t), log: &bytes.Buffer{}}
		args := []string{"server", "--name", p.name,
			"--data-dir", filepath.Join(dir, p.name), "--certs", pc.certs,
			"--peer-addr", peers[i], "--client-addr", p.client,
			"--initial-cluster", strings.Join(initial, ",")}
		if pc.api {
			p.api = loopport.Addr(t)
			args = append(args, "--api-addr", p.api)
		}
		if pc.gossip {
			p.gossip = loopport.Addr(t)
			args = append(args, "--gossip-addr", p.gossip)
			if i > 0 {
				args = append(args, "--gossip-join", pc.procs[0].gossip)
			}
		}
		p.cmd = exec.Command(bargeBin, args...)
		p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pc.procs = append(pc.procs, p)
	}
	t.Cleanup(func() {
		for _, p := range pc.procs {
			p.cmd.Process.Kill()
			p.cmd.Wait()
			if t.Failed() {
				t.Logf("--- %s log ---\n%s", p.name, p.log.String())
			}
		}
	})
	// `barge status` succeeds once every peer answers and a leader exists;
	// that is the readiness signal, as for an operator.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := exec.Command(bargeBin, "status", "-o", "json", "--endpoints", pc.endpoints(), "--certs", pc.certs).CombinedOutput()
		if err == nil && bytes.Contains(out, []byte(`"role": "leader"`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ready: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond) // polling an external process; no event to wait on
	}
	return pc
}

func (pc *processCluster) endpoints() string {
	var eps []string
	for _, p := range pc.procs {
		eps = append(eps, "https://"+p.client)
	}
	return strings.Join(eps, ",")
}

func (pc *processCluster) etcdctl(args ...string) *exec.Cmd {
	base := []string{"--endpoints", pc.endpoints(), "--cacert", filepath.Join(pc.certs, "ca.crt"),
		"--cert", filepath.Join(pc.certs, "admin.crt"), "--key", filepath.Join(pc.certs, "admin.key"), "--command-timeout", "10s"}
	cmd := exec.Command("etcdctl", append(base, args...)...)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	return cmd
}

func (pc *processCluster) ctl(args ...string) string {
	pc.t.Helper()
	out, err := pc.etcdctl(args...).CombinedOutput()
	if err != nil {
		pc.t.Fatalf("etcdctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestEtcdctlAgainstProcessCluster(t *testing.T) {
	requireTool(t, "etcdctl")
	pc := startProcessCluster(t, 3)

	t.Run("put get del", func(t *testing.T) {
		if out := pc.ctl("put", "greeting", "hello"); strings.TrimSpace(out) != "OK" {
			t.Fatalf("put: %q", out)
		}
		pc.ctl("put", "greeting2", "world")
		if out := pc.ctl("get", "greeting", "--prefix"); out != "greeting\nhello\ngreeting2\nworld\n" {
			t.Fatalf("get --prefix: %q", out)
		}
		if out := pc.ctl("get", "greeting", "--print-value-only"); out != "hello\n" {
			t.Fatalf("get: %q", out)
		}
		if out := pc.ctl("del", "greeting", "--prefix"); strings.TrimSpace(out) != "2" {
			t.Fatalf("del: %q", out)
		}
		if out := pc.ctl("get", "greeting", "--prefix"); out != "" {
			t.Fatalf("get after del: %q", out)
		}
	})

	t.Run("txn", func(t *testing.T) {
		pc.ctl("put", "flag", "on")
		cmd := pc.etcdctl("txn")
		cmd.Stdin = strings.NewReader("value(\"flag\") = \"on\"\n\nput result yes\n\nput result no\n\n")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "SUCCESS") {
			t.Fatalf("txn: %v %q", err, out)
		}
		if got := pc.ctl("get", "result", "--print-value-only"); got != "yes\n" {
			t.Fatalf("txn wrote %q", got)
		}
	})

	t.Run("watch", func(t *testing.T) {
		// Watch from the revision after a marker write, so the events to
		// expect do not depend on when etcdctl registers the watch.
		var marker struct {
			Header struct {
				Revision int64 `json:"revision"`
			} `json:"header"`
		}
		if err := json.Unmarshal([]byte(pc.ctl("put", "w-marker", "x", "-w", "json")), &marker); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			pc.ctl("put", fmt.Sprintf("w/%d", i), fmt.Sprint(i))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		base := pc.etcdctl("watch", "w/", "--prefix", "--prev-kv", fmt.Sprintf("--rev=%d", marker.Header.Revision+1))
		cmd := exec.CommandContext(ctx, base.Path, base.Args[1:]...)
		cmd.Env = base.Env
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); cmd.Wait() }()
		go pc.etcdctl("put", "w/0", "again").Run()
		lines := bufio.NewScanner(stdout)
		var got []string
		for len(got) < 14 && lines.Scan() {
			got = append(got, lines.Text())
		}
		want := []string{"PUT", "w/0", "0", "PUT", "w/1", "1", "PUT", "w/2", "2", "PUT", "w/0", "0", "w/0", "again"}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("watch output\n got %q\nwant %q", got, want)
		}
	})

	t.Run("lease", func(t *testing.T) {
		out := pc.ctl("lease", "grant", "60")
		m := regexp.MustCompile(`lease ([0-9a-f]+) granted with TTL\(60s\)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("lease grant: %q", out)
		}
		id := m[1]
		pc.ctl("put", "leased", "v", "--lease", id)
		if out := pc.ctl("lease", "keep-alive", "--once", id); !strings.Contains(out, "keepalived with TTL(60)") {
			t.Fatalf("keep-alive: %q", out)
		}
		if out := pc.ctl("lease", "timetolive", id, "--keys"); !strings.Contains(out, "attached keys([leased])") {
			t.Fatalf("timetolive: %q", out)
		}
		if out := pc.ctl("lease", "revoke", id); !strings.Contains(out, "revoked") {
			t.Fatalf("revoke: %q", out)
		}
		if out := pc.ctl("get", "leased"); out != "" {
			t.Fatalf("key survived its lease's revocation: %q", out)
		}
	})

	t.Run("member list and endpoint status", func(t *testing.T) {
		out := pc.ctl("member", "list", "-w", "json")
		var ml struct {
			Members []struct {
				Name       string   `json:"name"`
				ClientURLs []string `json:"clientURLs"`
			} `json:"members"`
		}
		if err := json.Unmarshal([]byte(out), &ml); err != nil {
			t.Fatalf("member list json: %v\n%s", err, out)
		}
		if len(ml.Members) != 3 {
			t.Fatalf("member list: %s", out)
		}
		names := map[string]bool{}
		for _, m := range ml.Members {
			names[m.Name] = true
			if len(m.ClientURLs) != 1 {
				t.Fatalf("member %s client URLs %v", m.Name, m.ClientURLs)
			}
		}
		if !names["s1"] || !names["s2"] || !names["s3"] {
			t.Fatalf("member names %v", names)
		}
		out = pc.ctl("endpoint", "status", "-w", "json")
		var sts []struct {
			Endpoint string `json:"Endpoint"`
			Status   struct {
				Header struct {
					MemberID uint64 `json:"member_id"`
				} `json:"header"`
				Leader uint64 `json:"leader"`
			} `json:"Status"`
		}
		if err := json.Unmarshal([]byte(out), &sts); err != nil {
			t.Fatalf("endpoint status json: %v\n%s", err, out)
		}
		leaders := map[uint64]bool{}
		isLeader := 0
		for _, s := range sts {
			leaders[s.Status.Leader] = true
			if s.Status.Leader == s.Status.Header.MemberID {
				isLeader++
			}
		}
		if len(sts) != 3 || len(leaders) != 1 || isLeader != 1 {
			t.Fatalf("endpoint status disagrees on the leader: %s", out)
		}
		pc.ctl("endpoint", "health")
	})
}
