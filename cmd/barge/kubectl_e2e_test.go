package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// This file drives real kubectl binaries (three minor versions) against a
// three-peer barge cluster run as separate processes, and judges the API
// server by what kubectl prints, as a user would.

// kubectlVersions are the client minors exercised, in order: the
// preinstalled releases, then the one built from the pinned
// k8s.io/kubernetes (builtKubectlVersion, the served version). The leader
// is killed after the first one; the others run against the survivors.
var kubectlVersions = []string{"1.31", "1.32", "1.33", builtKubectlVersion}

// kubectl runs one kubectl binary against one API server, with its own
// HOME (so the discovery cache of one version does not leak into another)
// and no KUBECONFIG from the environment.
type kubectl struct {
	version    string // "1.31"
	path       string
	kubeconfig string
	server     string // https://127.0.0.1:PORT
	home       string
}

// command builds a kubectl invocation; ctx bounds it.
func (k kubectl) command(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{"--kubeconfig", k.kubeconfig, "--server", k.server}, args...)
	cmd := exec.CommandContext(ctx, k.path, full...)
	env := []string{"HOME=" + k.home}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUBECONFIG=") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run returns kubectl's combined output and its error (non-nil on a
// non-zero exit).
func (k kubectl) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := k.command(ctx, args...).CombinedOutput()
	return string(out), err
}

// must runs kubectl and fails the test unless it exits 0.
func (k kubectl) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := k.run(t, args...)
	if err != nil {
		t.Fatalf("kubectl %s %s: %v\n%s", k.version, strings.Join(args, " "), err, out)
	}
	return out
}

// fails runs kubectl and fails the test unless it exits non-zero.
func (k kubectl) fails(t *testing.T, args ...string) string {
	t.Helper()
	out, err := k.run(t, args...)
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("kubectl %s %s: want a non-zero exit, got %v\n%s", k.version, strings.Join(args, " "), err, out)
	}
	return out
}

// jsonpath returns one value read with -o jsonpath.
func (k kubectl) jsonpath(t *testing.T, path string, args ...string) string {
	t.Helper()
	return k.must(t, append(args, "-o", "jsonpath="+path)...)
}

// wantOutput fails unless out holds every substring in want.
func wantOutput(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("%s: output lacks %q\n%s", what, w, out)
		}
	}
}

// wantMatch fails unless out matches every regular expression in want.
func wantMatch(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !regexp.MustCompile(w).MatchString(out) {
			t.Fatalf("%s: output does not match %s\n%s", what, w, out)
		}
	}
}

// wantEqual fails unless got equals want.
func wantEqual(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

// kubectlDir is the folder holding kubectl.1.31 and friends: the one the
// kubectl on PATH lives in (following links), else the Cloud SDK's.
func kubectlDir() string {
	if p, err := exec.LookPath("kubectl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			if _, err := os.Stat(filepath.Join(filepath.Dir(real), "kubectl."+kubectlVersions[0])); err == nil {
				return filepath.Dir(real)
			}
		}
	}
	return "/usr/lib/google-cloud-sdk/bin"
}

// requireKubectl finds kubectl.VERSION, failing or skipping as requireTool.
func requireKubectl(t *testing.T, version string) string {
	t.Helper()
	if version == builtKubectlVersion {
		if builtKubectl == "" {
			t.Fatal("kubectl from k8s.io/kubernetes/cmd/kubectl was not built (see TestMain)")
		}
		return builtKubectl
	}
	p := filepath.Join(kubectlDir(), "kubectl."+version)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if os.Getenv("BARGE_REQUIRE_ROOT") == "1" {
		t.Fatalf("%s not found", p)
	}
	t.Skipf("%s not found", p)
	return ""
}

// clusterStatus runs `barge status -o json` against the given peers.
func clusterStatus(t *testing.T, pc *processCluster, procs []*proc) ([]peerStatus, error) {
	t.Helper()
	var eps []string
	for _, p := range procs {
		eps = append(eps, "https://"+p.client)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bargeBin, "status", "-o", "json", "--endpoints", strings.Join(eps, ","), "--certs", pc.certs).Output()
	if err != nil {
		return nil, fmt.Errorf("barge status: %v\n%s", err, out)
	}
	var rows []peerStatus
	if err := json.Unmarshal(out, &rows); err != nil {
		return nil, fmt.Errorf("barge status json: %v\n%s", err, out)
	}
	return rows, nil
}

// leaderOf returns the process `barge status` reports as leader.
func leaderOf(t *testing.T, pc *processCluster, procs []*proc) *proc {
	t.Helper()
	rows, err := clusterStatus(t, pc, procs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Role != "leader" {
			continue
		}
		for _, p := range procs {
			if r.Endpoint == "https://"+p.client {
				return p
			}
		}
	}
	t.Fatalf("no leader among %d peers: %+v", len(procs), rows)
	return nil
}

// etcdctlKeys lists the keys under prefix through the given peers (the
// survivors: a killed peer is left out so etcdctl never dials it).
func etcdctlKeys(t *testing.T, pc *processCluster, procs []*proc, prefix string) []string {
	t.Helper()
	var eps []string
	for _, p := range procs {
		eps = append(eps, "https://"+p.client)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "etcdctl", "--endpoints", strings.Join(eps, ","),
		"--cacert", filepath.Join(pc.certs, "ca.crt"), "--cert", filepath.Join(pc.certs, "admin.crt"),
		"--key", filepath.Join(pc.certs, "admin.key"), "--command-timeout", "10s",
		"get", prefix, "--prefix", "--keys-only")
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("etcdctl get %s --prefix --keys-only: %v\n%s", prefix, err, out)
	}
	var keys []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			keys = append(keys, l)
		}
	}
	return keys
}

// ownObjects drops from `get -o name` output what a Kubernetes
// controller manager keeps in every namespace (and recreates when
// deleted), so the rest is what the scenario made.
func ownObjects(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if l != "" && l != "configmap/kube-root-ca.crt" {
			keep = append(keep, l+"\n")
		}
	}
	return strings.Join(keep, "")
}

// writeFile writes a manifest and returns its path.
func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// webDeployment is the Deployment manifest the scenario edits: its image,
// its extra metadata labels and its env vars vary between applies.
func webDeployment(image string, labels, env []string) string {
	var b strings.Builder
	b.WriteString("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n    app: web\n")
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		fmt.Fprintf(&b, "    %s: %s\n", k, v)
	}
	b.WriteString("spec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n")
	fmt.Fprintf(&b, "    spec:\n      containers:\n      - name: web\n        image: %s\n        ports:\n        - containerPort: 80\n", image)
	if len(env) > 0 {
		b.WriteString("        env:\n")
		for _, e := range env {
			k, v, _ := strings.Cut(e, "=")
			fmt.Fprintf(&b, "        - name: %s\n          value: %q\n", k, v)
		}
	}
	return b.String()
}

const webService = `apiVersion: v1
kind: Service
metadata:
  name: web
  labels:
    app: web
spec:
  type: NodePort
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 80
`

const webConfig = `apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  labels:
    app: web
data:
  greeting: hello
`

// TestKubectlAgainstProcessCluster runs one kubectl scenario per client
// version against a follower's API server; between the first and the
// second version the Raft leader is killed with SIGKILL.
func TestKubectlAgainstProcessCluster(t *testing.T) {
	requireTool(t, "etcdctl")
	paths := map[string]string{}
	for _, v := range kubectlVersions {
		paths[v] = requireKubectl(t, v)
	}
	start := time.Now()
	pc := startProcessCluster(t, 3, withAPIServers())

	leader := leaderOf(t, pc, pc.procs)
	var target *proc
	for _, p := range pc.procs {
		if p != leader {
			target = p
			break
		}
	}
	t.Logf("leader %s; kubectl talks to %s (API %s)", leader.name, target.name, target.api)
	kubeconfig := filepath.Join(pc.certs, "admin.kubeconfig")
	client := func(t *testing.T, version string) kubectl {
		return kubectl{version: version, path: paths[version], kubeconfig: kubeconfig,
			server: "https://" + target.api, home: t.TempDir()}
	}

	// The API server starts after the store is ready; /readyz says when
	// its bootstrap (RBAC, system namespaces) is done.
	first := client(t, kubectlVersions[0])
	waitUntil(t, 60*time.Second, "API server ready", func() (string, bool) {
		out, err := first.run(t, "get", "--raw", "/readyz")
		return out, err == nil && strings.TrimSpace(out) == "ok"
	})

	// The store's figures are on the API server's own /metrics.
	out, err := first.run(t, "get", "--raw", "/metrics")
	if err != nil {
		t.Fatalf("get --raw /metrics: %v", err)
	}
	wantMatch(t, "API server /metrics", out, `(?m)^barge_disk_log_fsync_duration_seconds_count \d+`, `(?m)^apiserver_request_total\{`)

	survivors := pc.procs
	for i, v := range kubectlVersions {
		if i == 1 {
			t.Logf("SIGKILL leader %s", leader.name)
			killed := time.Now()
			if err := leader.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			leader.cmd.Wait() // reaps it; the exit status of a killed process is an error
			survivors = nil
			for _, p := range pc.procs {
				if p != leader {
					survivors = append(survivors, p)
				}
			}
			// The one command allowed to retry: the first after the kill,
			// while the survivors elect a new leader.
			k := client(t, v)
			waitUntil(t, 60*time.Second, "kubectl get ns after killing the leader", func() (string, bool) {
				out, err := k.run(t, "get", "ns")
				return out, err == nil
			})
			back := time.Since(killed)
			t.Logf("new leader %s; kubectl served again %.1fs after the kill", leaderOf(t, pc, survivors).name, back.Seconds())
		}
		t.Run(v, func(t *testing.T) {
			tag := strings.ReplaceAll(v, ".", "") // 1.31 -> 131
			s := &scenario{
				k:         client(t, v),
				ns:        "e2e-" + tag,
				node:      "e2e-node-" + tag,
				dir:       t.TempDir(),
				pc:        pc,
				survivors: survivors,
			}
			s.run(t)
		})
	}
	t.Logf("whole test took %s", time.Since(start).Round(time.Second))
}

// waitUntil polls an external process until ok or the deadline.
func waitUntil(t *testing.T, limit time.Duration, what string, try func() (string, bool)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		out, ok := try()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last output:\n%s", what, limit, out)
		}
		time.Sleep(200 * time.Millisecond) // polling an external process; no event to wait on
	}
}

// scenario is one kubectl version's walk through the API, in its own
// namespace and with its own manifests.
type scenario struct {
	k         kubectl
	ns        string
	node      string
	dir       string
	pc        *processCluster
	survivors []*proc

	clusterIP string
	nodePort  string
}

func (s *scenario) path(name string) string { return filepath.Join(s.dir, name) }

// run runs the steps in order and stops at the first failing one that
// later steps build on.
func (s *scenario) run(t *testing.T) {
	steps := []struct {
		name  string
		fn    func(t *testing.T)
		alone bool // nothing later depends on it
	}{
		{"discovery", s.discovery, false},
		{"version info", s.versionInfo, true},
		{"apply and get", s.applyAndGet, false},
		{"etcd keys", s.etcdKeys, true},
		{"client-side apply edits", s.clientSideApply, false},
		{"server-side apply", s.serverSideApply, false},
		{"imperative commands", s.imperative, false},
		{"pods and nodes", s.podsAndNodes, false},
		{"pod admission defaults", s.podAdmission, true},
		{"cluster defaults", s.clusterDefaults, true},
		{"auth events config", s.authEventsConfig, true},
		{"logs", s.logs, true},
		{"custom resources", s.customResources, true},
		{"workload kinds", s.workloadKinds, true},
		{"bad manifests", s.badManifests, false},
		{"watch", s.watch, false},
		{"delete", s.delete, false},
		{"delete namespace", s.deleteNamespace, false},
	}
	for _, st := range steps {
		if !t.Run(st.name, st.fn) && !st.alone {
			return
		}
	}
}

func (s *scenario) discovery(t *testing.T) {
	k := s.k
	out := k.must(t, "version")
	client := k.version
	if client == builtKubectlVersion {
		client = kubernetesModuleVersion
	}
	wantMatch(t, "kubectl version", out, `Client Version: v`+regexp.QuoteMeta(strings.TrimPrefix(client, "v"))+`\b`,
		`Server Version: `+regexp.QuoteMeta(kubernetesModuleVersion)+`\+barge-`)

	out = k.must(t, "api-resources")
	type row struct{ short, version, namespaced, kind string }
	got := map[string]row{}
	for _, l := range strings.Split(out, "\n")[1:] {
		f := strings.Fields(l)
		if len(f) < 4 {
			continue
		}
		r := row{version: f[len(f)-3], namespaced: f[len(f)-2], kind: f[len(f)-1]}
		if len(f) == 5 {
			r.short = f[1]
		}
		got[f[0]] = r
	}
	for name, want := range map[string]row{
		"deployments":              {"deploy", "apps/v1", "true", "Deployment"},
		"pods":                     {"po", "v1", "true", "Pod"},
		"services":                 {"svc", "v1", "true", "Service"},
		"configmaps":               {"cm", "v1", "true", "ConfigMap"},
		"secrets":                  {"", "v1", "true", "Secret"},
		"namespaces":               {"ns", "v1", "false", "Namespace"},
		"nodes":                    {"no", "v1", "false", "Node"},
		"leases":                   {"", "coordination.k8s.io/v1", "true", "Lease"},
		"endpointslices":           {"", "discovery.k8s.io/v1", "true", "EndpointSlice"},
		"roles":                    {"", "rbac.authorization.k8s.io/v1", "true", "Role"},
		"selfsubjectaccessreviews": {"", "authorization.k8s.io/v1", "false", "SelfSubjectAccessReview"},
	} {
		if got[name] != want {
			t.Errorf("api-resources %s: got %+v, want %+v", name, got[name], want)
		}
	}
	if t.Failed() {
		t.Logf("api-resources:\n%s", out)
	}
}

// versionInfo checks the server's /version: Kubernetes 1.33 added the
// emulated and the minimum compatibility version, and a server never
// reports a minimum compatibility version newer than itself (kubectl 1.33
// prints them in `version -o json`).
func (s *scenario) versionInfo(t *testing.T) {
	out := s.k.must(t, "get", "--raw", "/version")
	var v map[string]string
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("get --raw /version: %v\n%s", err, out)
	}
	if !strings.HasPrefix(v["gitVersion"], "v"+v["major"]+"."+v["minor"]+".") {
		t.Errorf("/version gitVersion %q does not match major %q minor %q", v["gitVersion"], v["major"], v["minor"])
	}
	if em := v["emulationMinor"]; em != "" && (v["emulationMajor"] != v["major"] || em != v["minor"]) {
		t.Errorf("/version emulates %s.%s but is %s.%s\n%s", v["emulationMajor"], em, v["major"], v["minor"], out)
	}
	if mc := v["minCompatibilityMinor"]; mc != "" {
		minor, _ := strconv.Atoi(v["minor"])
		if n, err := strconv.Atoi(mc); err != nil || v["minCompatibilityMajor"] != v["major"] || n > minor {
			t.Errorf("/version of a %s.%s server reports minimum compatibility version %s.%s, newer than itself; Kubernetes reports at most its own version (1.33 reports 1.32)\n%s",
				v["major"], v["minor"], v["minCompatibilityMajor"], mc, out)
		}
	}
}

func (s *scenario) applyAndGet(t *testing.T) {
	k, ns := s.k, s.ns
	wantEqual(t, "create namespace", strings.TrimSpace(k.must(t, "create", "namespace", ns)), "namespace/"+ns+" created")

	app := s.path("app")
	writeFile(t, filepath.Join(app, "deploy.yaml"), webDeployment("nginx:1.25", []string{"tier=frontend"}, []string{"MODE=prod", "DEBUG=false"}))
	writeFile(t, filepath.Join(app, "svc.yaml"), webService)
	writeFile(t, filepath.Join(app, "cm.yaml"), webConfig)
	out := k.must(t, "apply", "-n", ns, "-f", app)
	wantOutput(t, "apply -f "+app, out, "deployment.apps/web created", "service/web created", "configmap/web-config created")

	out = k.must(t, "get", "deploy,svc,cm", "-n", ns, "-o", "wide")
	wantMatch(t, "get -o wide", out,
		`NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\s+CONTAINERS\s+IMAGES\s+SELECTOR`,
		// READY, UP-TO-DATE and AVAILABLE are the deployment controller's.
		`deployment\.apps/web\s+0/2\s+\d+\s+0\s+\S+\s+web\s+nginx:1\.25\s+app=web`,
		`NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE\s+SELECTOR`,
		`service/web\s+NodePort\s+10\.96\.\d+\.\d+\s+<none>\s+80:3\d{4}/TCP\s+\S+\s+app=web`,
		`NAME\s+DATA\s+AGE`,
		`configmap/web-config\s+1\s+`)

	out = k.must(t, "get", "deploy", "web", "-n", ns, "-o", "yaml")
	wantOutput(t, "get deploy -o yaml", out, "kind: Deployment", "replicas: 2", "image: nginx:1.25",
		"kubectl.kubernetes.io/last-applied-configuration", "namespace: "+ns)

	var d struct {
		Kind     string `json:"kind"`
		Metadata struct {
			UID        string            `json:"uid"`
			Generation int64             `json:"generation"`
			Labels     map[string]string `json:"labels"`
		} `json:"metadata"`
		Spec struct {
			Replicas int `json:"replicas"`
			Strategy struct {
				Type string `json:"type"`
			} `json:"strategy"`
		} `json:"spec"`
	}
	out = k.must(t, "get", "deploy", "web", "-n", ns, "-o", "json")
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("get -o json: %v\n%s", err, out)
	}
	if d.Kind != "Deployment" || d.Metadata.UID == "" || d.Metadata.Generation != 1 || d.Spec.Replicas != 2 ||
		d.Metadata.Labels["tier"] != "frontend" || d.Spec.Strategy.Type != "RollingUpdate" {
		t.Fatalf("get -o json: unexpected deployment %+v\n%s", d, out)
	}

	// The service got a cluster IP from 10.96.0.0/16 and a node port from
	// 30000-32767.
	svc := k.jsonpath(t, `{.spec.type} {.spec.clusterIP} {.spec.ports[0].nodePort} {.spec.ports[0].protocol}`, "get", "svc", "web", "-n", ns)
	f := strings.Fields(svc)
	if len(f) != 4 || f[0] != "NodePort" || f[3] != "TCP" {
		t.Fatalf("service type, IP, node port, protocol: %q", svc)
	}
	if ip := net.ParseIP(f[1]); ip == nil || !(&net.IPNet{IP: net.IPv4(10, 96, 0, 0), Mask: net.CIDRMask(16, 32)}).Contains(ip) {
		t.Fatalf("cluster IP %q is not in 10.96.0.0/16", f[1])
	}
	if p, err := strconv.Atoi(f[2]); err != nil || p < 30000 || p > 32767 {
		t.Fatalf("node port %q is not in 30000-32767", f[2])
	}
	s.clusterIP, s.nodePort = f[1], f[2]

	out = k.must(t, "get", "deploy,cm", "-n", ns, "-o", "custom-columns=KIND:.kind,NAME:.metadata.name,APP:.metadata.labels.app")
	wantMatch(t, "get -o custom-columns", out, `KIND\s+NAME\s+APP`, `Deployment\s+web\s+web`, `ConfigMap\s+web-config\s+web`)

	out = k.must(t, "get", "deploy,svc,cm", "-n", ns, "-l", "app=web", "-o", "name")
	wantEqual(t, "get -l app=web -o name", out, "deployment.apps/web\nservice/web\nconfigmap/web-config\n")
	out = k.must(t, "get", "deploy,svc,cm", "-n", ns, "-l", "app=nothing")
	wantOutput(t, "get -l app=nothing", out, "No resources found in "+ns+" namespace.")

	out = k.must(t, "get", "deploy", "-A")
	wantMatch(t, "get deploy -A", out, `NAMESPACE\s+NAME\s+READY`, `(?m)^`+regexp.QuoteMeta(ns)+`\s+web\s+0/2\s`)
}

// etcdKeys checks, with etcdctl, that the objects sit where
// kube-apiserver puts them: /registry/<resource>/<namespace>/<name>, and
// services one level deeper, under services/specs.
func (s *scenario) etcdKeys(t *testing.T) {
	ns := s.ns
	keys := strings.Join(etcdctlKeys(t, s.pc, s.survivors, "/registry"), "\n")
	for _, want := range []string{
		"/registry/deployments/" + ns + "/web",
		"/registry/configmaps/" + ns + "/web-config",
		"/registry/namespaces/" + ns,
		"/registry/services/specs/" + ns + "/web",
	} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want) + `$`).MatchString(keys) {
			t.Errorf("etcdctl get /registry --prefix --keys-only: no key %s", want)
		}
	}
	if t.Failed() {
		t.Logf("keys:\n%s", keys)
	}
}

func (s *scenario) clientSideApply(t *testing.T) {
	k, ns := s.k, s.ns
	deploy := s.path("app/deploy.yaml")

	// A new image and a new label.
	writeFile(t, deploy, webDeployment("nginx:1.26", []string{"tier=frontend", "track=stable"}, []string{"MODE=prod", "DEBUG=false"}))
	out := k.must(t, "apply", "-n", ns, "-f", s.path("app"))
	wantOutput(t, "re-apply", out, "deployment.apps/web configured", "service/web unchanged", "configmap/web-config unchanged")
	got := k.jsonpath(t, `{.spec.template.spec.containers[0].image} {.metadata.labels.tier} {.metadata.labels.track} {.metadata.generation}`, "get", "deploy", "web", "-n", ns)
	wantEqual(t, "image, labels, generation after re-apply", got, "nginx:1.26 frontend stable 2")

	// A label and an env var dropped from the file go from the object:
	// the last-applied annotation says they were ours.
	writeFile(t, deploy, webDeployment("nginx:1.26", []string{"track=stable"}, []string{"MODE=prod"}))
	out = k.must(t, "apply", "-n", ns, "-f", deploy)
	wantEqual(t, "apply after removals", strings.TrimSpace(out), "deployment.apps/web configured")
	got = k.jsonpath(t, `{.metadata.labels} {.spec.template.spec.containers[0].env}`, "get", "deploy", "web", "-n", ns)
	wantEqual(t, "labels and env after removals", got, `{"app":"web","track":"stable"} [{"name":"MODE","value":"prod"}]`)
	out = k.must(t, "apply", "-n", ns, "-f", deploy)
	wantEqual(t, "apply of an unchanged file", strings.TrimSpace(out), "deployment.apps/web unchanged")
}

func (s *scenario) serverSideApply(t *testing.T) {
	k, ns := s.k, s.ns
	first := writeFile(t, s.path("ssa/first.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\n  labels:\n    app: ssa\ndata:\n  owner: first\n  keep: \"yes\"\n")
	second := writeFile(t, s.path("ssa/second.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  owner: second\n")

	out := k.must(t, "apply", "--server-side", "-n", ns, "-f", first)
	wantEqual(t, "apply --server-side", strings.TrimSpace(out), "configmap/ssa serverside-applied")

	out = k.fails(t, "apply", "--server-side", "--field-manager=other", "-n", ns, "-f", second)
	wantOutput(t, "conflicting server-side apply", out, "Apply failed with 1 conflict", `conflict with "kubectl"`, ".data.owner", "--force-conflicts")
	wantEqual(t, "owner after the refused apply", k.jsonpath(t, "{.data.owner}", "get", "cm", "ssa", "-n", ns), "first")

	out = k.must(t, "apply", "--server-side", "--field-manager=other", "--force-conflicts", "-n", ns, "-f", second)
	wantEqual(t, "apply --force-conflicts", strings.TrimSpace(out), "configmap/ssa serverside-applied")
	got := k.jsonpath(t, `{.data.owner} {.data.keep} {.metadata.managedFields[?(@.manager=="other")].operation}`, "get", "cm", "ssa", "-n", ns)
	wantEqual(t, "owner, kept field, other's operation after --force-conflicts", got, "second yes Apply")
}

func (s *scenario) imperative(t *testing.T) {
	k, ns := s.k, s.ns
	out := k.must(t, "create", "configmap", "lit", "-n", ns, "--from-literal=a=1", "--from-literal=b=2")
	wantEqual(t, "create configmap", strings.TrimSpace(out), "configmap/lit created")
	wantEqual(t, "literal data", k.jsonpath(t, "{.data.a}{.data.b}", "get", "cm", "lit", "-n", ns), "12")

	// replace -f of an edited copy of the live object.
	live := k.must(t, "get", "cm", "lit", "-n", ns, "-o", "yaml")
	if !strings.Contains(live, `a: "1"`) {
		t.Fatalf("get cm lit -o yaml:\n%s", live)
	}
	edited := writeFile(t, s.path("lit.yaml"), strings.Replace(live, `a: "1"`, `a: "10"`, 1))
	out = k.must(t, "replace", "-f", edited)
	wantEqual(t, "replace", strings.TrimSpace(out), "configmap/lit replaced")
	wantEqual(t, "data.a after replace", k.jsonpath(t, "{.data.a}", "get", "cm", "lit", "-n", ns), "10")
	// The file still carries the old resourceVersion: optimistic
	// concurrency refuses a second replace.
	out = k.fails(t, "replace", "-f", edited)
	wantOutput(t, "replace with a stale resourceVersion", out, "Conflict", "the object has been modified")

	wantEqual(t, "label", strings.TrimSpace(k.must(t, "label", "deploy", "web", "-n", ns, "env=test")), "deployment.apps/web labeled")
	out = k.fails(t, "label", "deploy", "web", "-n", ns, "env=prod")
	wantOutput(t, "label without --overwrite", out, "'env' already has a value (test), and --overwrite is false")
	wantEqual(t, "annotate", strings.TrimSpace(k.must(t, "annotate", "deploy", "web", "-n", ns, "note=hi")), "deployment.apps/web annotated")
	wantEqual(t, "scale", strings.TrimSpace(k.must(t, "scale", "deploy", "web", "-n", ns, "--replicas=3")), "deployment.apps/web scaled")
	got := k.jsonpath(t, "{.spec.replicas} {.metadata.labels.env} {.metadata.annotations.note}", "get", "deploy", "web", "-n", ns)
	wantEqual(t, "replicas, label, annotation", got, "3 test hi")

	// Strategic merge (the default) merges containers by name: the image
	// changes, the env var stays.
	out = k.must(t, "patch", "deploy", "web", "-n", ns, "-p", `{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.27"}]}}}}`)
	wantEqual(t, "strategic patch", strings.TrimSpace(out), "deployment.apps/web patched")
	got = k.jsonpath(t, "{.spec.template.spec.containers[*].name} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].env[0].name}", "get", "deploy", "web", "-n", ns)
	wantEqual(t, "after strategic patch", got, "web nginx:1.27 MODE")

	out = k.must(t, "patch", "deploy", "web", "-n", ns, "--type=merge", "-p", `{"metadata":{"labels":{"patched":"merge","env":null}}}`)
	wantEqual(t, "merge patch", strings.TrimSpace(out), "deployment.apps/web patched")
	out = k.must(t, "patch", "deploy", "web", "-n", ns, "--type=json", "-p", `[{"op":"replace","path":"/spec/replicas","value":4},{"op":"add","path":"/metadata/annotations/json","value":"yes"}]`)
	wantEqual(t, "json patch", strings.TrimSpace(out), "deployment.apps/web patched")
	got = k.jsonpath(t, `{.spec.replicas} {.metadata.labels.patched} [{.metadata.labels.env}] {.metadata.annotations.json}`, "get", "deploy", "web", "-n", ns)
	wantEqual(t, "after merge and json patches", got, "4 merge [] yes")
}

func (s *scenario) podsAndNodes(t *testing.T) {
	k, ns := s.k, s.ns
	wantEqual(t, "run", strings.TrimSpace(k.must(t, "run", "p", "-n", ns, "--image=busybox", "--restart=Never")), "pod/p created")
	out := k.must(t, "get", "pods", "-n", ns)
	wantMatch(t, "get pods", out, `NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE`, `(?m)^p\s+0/1\s+Pending\s+0\s+\S+\s*$`)

	out = k.must(t, "describe", "pod", "p", "-n", ns)
	wantMatch(t, "describe pod", out, `Name:\s+p\n`, `Namespace:\s+`+ns+`\n`, `Labels:\s+run=p`, `Status:\s+Pending`,
		`Image:\s+busybox`, `QoS Class:\s+BestEffort`)

	out = k.must(t, "describe", "deploy", "web", "-n", ns)
	wantMatch(t, "describe deploy", out, `Name:\s+web\n`, `Selector:\s+app=web`, `Replicas:\s+4 desired \| \d+ updated \| \d+ total \| 0 available`,
		`StrategyType:\s+RollingUpdate`, `Image:\s+nginx:1\.27`, `MODE:\s+prod`, `note:\s+hi`)

	out = k.must(t, "describe", "svc", "web", "-n", ns)
	wantMatch(t, "describe svc", out, `Name:\s+web\n`, `Type:\s+NodePort`, `IP:\s+`+regexp.QuoteMeta(s.clusterIP)+`\n`,
		`NodePort:\s+<unset>\s+`+s.nodePort+`/TCP`, `TargetPort:\s+80/TCP`, `Selector:\s+app=web`)

	node := writeFile(t, s.path("node.yaml"), fmt.Sprintf("apiVersion: v1\nkind: Node\nmetadata:\n  name: %s\n  labels:\n    kubernetes.io/hostname: %s\n    e2e: %q\n", s.node, s.node, s.ns))
	wantEqual(t, "create node", strings.TrimSpace(k.must(t, "create", "-f", node)), "node/"+s.node+" created")
	out = k.must(t, "describe", "node", s.node)
	wantMatch(t, "describe node", out, `Name:\s+`+s.node+`\n`, `kubernetes\.io/hostname=`+s.node, `Unschedulable:\s+false`,
		`Non-terminated Pods:\s+\(0 in total\)`)
	out = k.must(t, "get", "nodes", "-o", "wide", "-l", "e2e="+s.ns)
	wantMatch(t, "get nodes -o wide", out,
		`NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\s+INTERNAL-IP\s+EXTERNAL-IP\s+OS-IMAGE\s+KERNEL-VERSION\s+CONTAINER-RUNTIME`,
		// No kubelet ever reported: no Ready condition, or an Unknown one.
		`(?m)^`+s.node+`\s+(Unknown|NotReady)\s+<none>\s+`)
}

// podAdmission checks what the default admission plugins of a Kubernetes
// API server add to the pod `kubectl run` made (ServiceAccount, Priority,
// DefaultTolerationSeconds, with barge's 5 s instead of Kubernetes' 300 s: see
// barge server --node-unreachable-toleration), and that describe shows it.
func (s *scenario) podAdmission(t *testing.T) {
	k, ns := s.k, s.ns
	got := k.jsonpath(t, `{.spec.serviceAccountName} {.spec.priority}`, "get", "pod", "p", "-n", ns)
	if got != "default 0" {
		t.Errorf("pod p: serviceAccountName and priority = %q; Kubernetes sets \"default 0\" (ServiceAccount and Priority admission)", got)
	}
	got = k.jsonpath(t, `{range .spec.tolerations[*]}{.key}:{.effect}:{.tolerationSeconds} {end}`, "get", "pod", "p", "-n", ns)
	for _, want := range []string{"node.kubernetes.io/not-ready:NoExecute:5", "node.kubernetes.io/unreachable:NoExecute:5"} {
		if !strings.Contains(got, want) {
			t.Errorf("pod p tolerations %q lack %s (DefaultTolerationSeconds admission)", got, want)
		}
	}
	got = k.jsonpath(t, `{.spec.volumes[*].name} {.spec.containers[0].volumeMounts[*].mountPath}`, "get", "pod", "p", "-n", ns)
	if !regexp.MustCompile(`^kube-api-access-[a-z0-9]{5} /var/run/secrets/kubernetes\.io/serviceaccount$`).MatchString(got) {
		t.Errorf("pod p volumes and mounts = %q; Kubernetes adds the projected kube-api-access-XXXXX volume mounted at /var/run/secrets/kubernetes.io/serviceaccount (ServiceAccount admission)", got)
	}
	out := k.must(t, "describe", "pod", "p", "-n", ns)
	for _, want := range []string{`Priority:\s+0\n`, `Service Account:\s+default\n`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("describe pod p does not match %s, as it does on Kubernetes\n%s", want, out)
		}
	}
}

// clusterDefaults checks what a Kubernetes control plane puts in every
// namespace (the "default" service account; the "kube-root-ca.crt" config
// map of the root CA publisher, which service account volumes use) and
// the "kubernetes" Service in "default", on the first IP of the range.
func (s *scenario) clusterDefaults(t *testing.T) {
	for _, c := range []struct{ obj, timeout string }{
		{"serviceaccount/default", "30s"},
		{"configmap/kube-root-ca.crt", "5s"},
	} {
		args := []string{"wait", "--for=create", c.obj, "-n", s.ns, "--timeout=" + c.timeout}
		if out, err := s.k.run(t, args...); err != nil {
			t.Errorf("kubectl %s %s: %v\n%s", s.k.version, strings.Join(args, " "), err, out)
		}
	}
	args := []string{"get", "service", "kubernetes", "-n", "default", "-o", "jsonpath={.spec.type} {.spec.clusterIP} {.spec.ports[0].port}"}
	if out, err := s.k.run(t, args...); err != nil || out != "ClusterIP 10.96.0.1 443" {
		t.Errorf("kubectl %s %s: %v\n%s\nKubernetes serves its API as service default/kubernetes: ClusterIP 10.96.0.1 443", s.k.version, strings.Join(args, " "), err, out)
	}
}

func (s *scenario) authEventsConfig(t *testing.T) {
	k, ns := s.k, s.ns
	wantEqual(t, "auth can-i create deployments", strings.TrimSpace(k.must(t, "auth", "can-i", "create", "deployments", "-n", ns)), "yes")
	out := k.fails(t, "auth", "can-i", "create", "deployments", "-n", ns, "--as=nobody")
	wantEqual(t, "auth can-i as nobody", strings.TrimSpace(out), "no")
	k.must(t, "get", "events", "-A")
	out = k.must(t, "config", "view", "--minify")
	wantOutput(t, "config view --minify", out, "current-context: barge", "client-certificate-data: DATA+OMITTED", "name: admin")
}

func (s *scenario) logs(t *testing.T) {
	// Kubernetes: a pod no node runs yet has no logs to show, and says
	// nothing else.
	out := s.k.must(t, "logs", "p", "-n", s.ns)
	wantEqual(t, "logs of an unscheduled pod", out, "")
}

func (s *scenario) badManifests(t *testing.T) {
	k, ns := s.k, s.ns
	cases := []struct {
		name, manifest, want string
	}{
		{"broken YAML", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\n data: [\n", "error converting YAML to JSON"},
		{"unknown kind", "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: widget\n", `no matches for kind "Widget" in version "example.com/v1"`},
		{"unknown field", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: unknownfield\ndata:\n  a: b\nbogus: 1\n", `unknown field "bogus"`},
		{"invalid value", strings.Replace(strings.Replace(webDeployment("busybox", nil, nil), "name: web\n", "name: negative\n", 1), "replicas: 2", "replicas: -1", 1),
			`The Deployment "negative" is invalid: spec.replicas: Invalid value: -1`},
	}
	for i, c := range cases {
		f := writeFile(t, s.path(fmt.Sprintf("bad/%d.yaml", i)), c.manifest)
		for _, verb := range []string{"apply", "create"} {
			out := k.fails(t, verb, "-n", ns, "-f", f)
			wantOutput(t, verb+" "+c.name, out, c.want)
		}
	}
	out := ownObjects(k.must(t, "get", "cm,deploy", "-n", ns, "-o", "name"))
	wantEqual(t, "objects after the bad manifests", out, "configmap/lit\nconfigmap/ssa\nconfigmap/web-config\ndeployment.apps/web\n")
	out = k.fails(t, "get", "widgets", "-n", ns)
	wantOutput(t, "get widgets", out, `the server doesn't have a resource type "widgets"`)
}

func (s *scenario) watch(t *testing.T) {
	k, ns := s.k, s.ns
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := k.command(ctx, "get", "configmaps", "-n", ns, "--watch")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); cmd.Wait() }()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	var seen []string
	fail := func(format string, args ...any) {
		t.Helper()
		cancel()
		cmd.Wait() // stderr is complete only once kubectl has exited
		t.Fatalf("kubectl %s get configmaps --watch: %s; output:\n%s\nstderr:\n%s",
			k.version, fmt.Sprintf(format, args...), strings.Join(seen, "\n"), stderr.String())
	}
	next := func(what string, ok func(string) bool) {
		t.Helper()
		for {
			select {
			case l, open := <-lines:
				if !open {
					fail("ended before the %s", what)
				}
				seen = append(seen, l)
				if ok(l) {
					return
				}
			case <-ctx.Done():
				fail("no %s in time", what)
			}
		}
	}
	// The initial list ends with the existing objects; what follows comes
	// from the watch.
	next("initial list", func(l string) bool { return strings.HasPrefix(l, "web-config ") })
	wantEqual(t, "create watched", strings.TrimSpace(k.must(t, "create", "configmap", "watched", "-n", ns, "--from-literal=k=v")), "configmap/watched created")
	next("line for the new configmap", func(l string) bool { return regexp.MustCompile(`^watched\s+1\s+`).MatchString(l) })
}

func (s *scenario) delete(t *testing.T) {
	k, ns := s.k, s.ns
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"delete", "configmap", "watched", "-n", ns}, []string{`configmap "watched" deleted`}},
		{[]string{"delete", "-n", ns, "-f", s.path("app/cm.yaml")}, []string{`configmap "web-config" deleted`}},
		{[]string{"delete", "-f", s.path("node.yaml")}, []string{`node "` + s.node + `" deleted`}},
		{[]string{"delete", "deploy", "-n", ns, "-l", "app=web"}, []string{`deployment.apps "web" deleted`}},
		{[]string{"delete", "configmaps", "-n", ns, "--all"}, []string{`configmap "lit" deleted`, `configmap "ssa" deleted`}},
	} {
		// kubectl 1.35 and later name the namespace too ("... deleted
		// from NS namespace").
		out := k.must(t, c.args...)
		var want []string
		for _, w := range c.want {
			want = append(want, `(?m)^`+regexp.QuoteMeta(w)+`( from `+regexp.QuoteMeta(ns)+` namespace)?$`)
		}
		wantMatch(t, "kubectl "+strings.Join(c.args, " "), out, want...)
	}
	out := ownObjects(k.must(t, "get", "deploy,cm", "-n", ns, "-o", "name"))
	if out != "" {
		t.Fatalf("deployments and configmaps left after the deletes:\n%s", out)
	}
	out = k.fails(t, "get", "node", s.node)
	wantOutput(t, "get deleted node", out, `nodes "`+s.node+`" not found`)
	// The pod and the service stay for the namespace deletion to remove.
	out = k.must(t, "get", "pods,svc", "-n", ns, "-o", "name")
	wantMatch(t, "left for the namespace", out, `(?m)^pod/p$`, `(?m)^service/web$`)
}

func (s *scenario) deleteNamespace(t *testing.T) {
	k, ns := s.k, s.ns
	keys := strings.Join(etcdctlKeys(t, s.pc, s.survivors, "/registry"), "\n")
	wantMatch(t, "etcdctl keys before the namespace deletion", keys, `(?m)^/registry/namespaces/`+ns+`$`, `(?m)^/registry/pods/`+ns+`/p$`)

	wantEqual(t, "delete namespace", strings.TrimSpace(k.must(t, "delete", "namespace", ns, "--wait=false")), `namespace "`+ns+`" deleted`)
	k.must(t, "wait", "--for=delete", "namespace/"+ns, "--timeout=60s")
	out := k.fails(t, "get", "namespace", ns)
	wantOutput(t, "get deleted namespace", out, `namespaces "`+ns+`" not found`)
	out = k.must(t, "get", "all", "-n", ns)
	wantOutput(t, "get all in the deleted namespace", out, "No resources found in "+ns+" namespace.")

	for _, key := range etcdctlKeys(t, s.pc, s.survivors, "/registry") {
		if strings.HasSuffix(key, "/"+ns) || strings.Contains(key, "/"+ns+"/") {
			t.Errorf("key %s survived the deletion of namespace %s", key, ns)
		}
	}
}

// customResources defines a CRD with a schema and printer columns, as an
// operator's chart would, and judges it by what kubectl prints: the
// columns, a value the schema forbids refused with its field path, and
// nothing stored for it.
func (s *scenario) customResources(t *testing.T) {
	k, ns := s.k, s.ns
	group := strings.ReplaceAll(ns, "-", "") + ".example.com"
	crd := writeFile(t, s.path("crd.yaml"), fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.%[1]s
spec:
  group: %[1]s
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget, shortNames: [gdg]}
  versions:
  - name: v1
    served: true
    storage: true
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Color, type: string, jsonPath: .spec.color}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1, maximum: 10}
              color: {type: string, enum: [red, green, blue]}
`, group))
	wantEqual(t, "create CRD", strings.TrimSpace(k.must(t, "apply", "-f", crd)), "customresourcedefinition.apiextensions.k8s.io/gadgets."+group+" created")
	k.must(t, "wait", "--for=condition=Established", "--timeout=60s", "crd/gadgets."+group)
	// Discovery learns of the new kind a moment after it is established.
	w := writeFile(t, s.path("gadget.yaml"), fmt.Sprintf("apiVersion: %s/v1\nkind: Gadget\nmetadata: {name: w1, namespace: %s}\nspec: {size: 3, color: green}\n", group, ns))
	waitUntil(t, 30*time.Second, "apply a Gadget", func() (string, bool) {
		out, err := k.run(t, "apply", "-f", w)
		return out, err == nil
	})
	out := k.must(t, "get", "gadgets."+group, "-n", ns)
	wantMatch(t, "get gadgets", out, `NAME\s+SIZE\s+COLOR\s*\n`, `(?m)^w1\s+3\s+green\s*$`)
	out = k.must(t, "get", "gdg", "-n", ns, "-o", "jsonpath={.items[0].spec.size}")
	wantEqual(t, "get by short name", out, "3")

	bad := writeFile(t, s.path("bad-gadget.yaml"), fmt.Sprintf("apiVersion: %s/v1\nkind: Gadget\nmetadata: {name: w2, namespace: %s}\nspec: {size: 11, color: pink}\n", group, ns))
	out = k.fails(t, "apply", "-f", bad)
	wantMatch(t, "a Gadget the schema forbids", out, `spec\.size: Invalid value: 11: spec\.size in body should be less than or equal to 10`,
		`spec\.color: Unsupported value: "pink"`)
	out = k.fails(t, "get", "gadget", "w2", "-n", ns)
	wantMatch(t, "the refused Gadget", out, `NotFound`)
	wantEqual(t, "delete CRD", strings.TrimSpace(k.must(t, "delete", "-f", crd)), `customresourcedefinition.apiextensions.k8s.io "gadgets.`+group+`" deleted`)
}

// workloadKinds stores every workload kind the hand-written server
// lacked and reads each back as kubectl shows it. Nothing runs them in
// this test; the controllers' tests do.
func (s *scenario) workloadKinds(t *testing.T) {
	k, ns := s.k, s.ns
	manifest := writeFile(t, s.path("workloads.yaml"), fmt.Sprintf(`apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: %[1]s}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: busybox}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: %[1]s}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: busybox}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: once, namespace: %[1]s}
spec:
  template:
    spec: {restartPolicy: Never, containers: [{name: once, image: busybox, command: [echo, hi]}]}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: %[1]s}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec: {restartPolicy: OnFailure, containers: [{name: nightly, image: busybox}]}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: db, namespace: %[1]s}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: db}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress, namespace: %[1]s}
spec:
  podSelector: {}
  policyTypes: [Ingress]
`, ns))
	out := k.must(t, "apply", "-f", manifest)
	wantOutput(t, "apply workloads", out, "statefulset.apps/db created", "daemonset.apps/agent created", "job.batch/once created",
		"cronjob.batch/nightly created", "poddisruptionbudget.policy/db created", "networkpolicy.networking.k8s.io/deny-ingress created")
	for _, tc := range []struct{ kind, path, want string }{
		{"statefulset/db", "{.spec.serviceName}/{.spec.replicas}", "db/2"},
		{"daemonset/agent", "{.spec.updateStrategy.type}", "RollingUpdate"},
		{"job/once", "{.spec.template.spec.containers[0].command[1]}/{.spec.backoffLimit}", "hi/6"},
		{"cronjob/nightly", "{.spec.schedule}/{.spec.concurrencyPolicy}", "0 3 * * */Allow"},
		{"pdb/db", "{.spec.minAvailable}", "1"},
		{"networkpolicy/deny-ingress", "{.spec.policyTypes[0]}", "Ingress"},
	} {
		wantEqual(t, "get "+tc.kind, k.jsonpath(t, tc.path, "get", tc.kind, "-n", ns), tc.want)
	}
	out = k.must(t, "get", "cronjobs", "-n", ns)
	wantMatch(t, "get cronjobs", out, `NAME\s+SCHEDULE\s+TIMEZONE\s+SUSPEND\s+ACTIVE\s+LAST SCHEDULE\s+AGE`, `(?m)^nightly\s+0 3 \* \* \*\s+<none>\s+False\s+0\s+<none>\s+`)
	k.must(t, "delete", "-f", manifest, "--wait=false")
}
