package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKubectlRolloutOnHollowNodes: the kubectl a user runs, against
// Kubernetes' own scheduler and controllers on the Raft leader, with
// `barge hollow` nodes: create a deployment, watch the rollout finish,
// change the image, roll back.
func TestKubectlRolloutOnHollowNodes(t *testing.T) {
	path := requireKubectl(t, builtKubectlVersion)
	pc := startProcessCluster(t, 3, withAPIServers())
	leader := leaderOf(t, pc, pc.procs)
	var api string
	for _, p := range pc.procs {
		if p != leader {
			api = p.api
		}
	}
	kubeconfig := filepath.Join(pc.certs, "admin.kubeconfig")
	k := kubectl{version: builtKubectlVersion, path: path, kubeconfig: kubeconfig, server: "https://" + api, home: t.TempDir()}
	waitUntil(t, 60*time.Second, "API server ready", func() (string, bool) {
		out, err := k.run(t, "get", "--raw", "/readyz")
		return out, err == nil && strings.TrimSpace(out) == "ok"
	})
	var log bytes.Buffer
	hollow := exec.Command(bargeBin, "hollow", "--kubeconfig", kubeconfig, "--server", "https://"+api, "--count", "3")
	hollow.Stdout, hollow.Stderr = &log, &log
	if err := hollow.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		hollow.Process.Kill()
		hollow.Wait()
		if t.Failed() {
			t.Logf("--- barge hollow ---\n%s", log.String())
		}
	})
	waitUntil(t, 60*time.Second, "3 Ready nodes", func() (string, bool) {
		out, err := k.run(t, "get", "nodes", "-l", "barge.dev/hollow", "--no-headers")
		return out, err == nil && strings.Count(out, " Ready ") == 3
	})

	k.must(t, "create", "deployment", "web", "--image=busybox:1", "--replicas=3")
	out := k.must(t, "rollout", "status", "deployment/web", "--timeout=60s")
	wantOutput(t, "rollout status", out, `deployment "web" successfully rolled out`)
	out = k.must(t, "get", "pods", "-l", "app=web", "-o", "wide")
	wantMatch(t, "pods on hollow nodes", out, `(?m)^web-\S+\s+1/1\s+Running\s+0\s+\S+\s+10\.244\.\d+\.\d+\s+hollow-\d\s`)

	k.must(t, "set", "image", "deployment/web", "busybox=busybox:2")
	k.must(t, "rollout", "status", "deployment/web", "--timeout=60s")
	wantEqual(t, "image after the update", k.jsonpath(t, "{.spec.template.spec.containers[0].image}", "get", "deployment", "web"), "busybox:2")
	out = k.must(t, "rollout", "history", "deployment/web")
	wantMatch(t, "rollout history", out, `(?m)^1\s`, `(?m)^2\s`)
	k.must(t, "rollout", "undo", "deployment/web")
	k.must(t, "rollout", "status", "deployment/web", "--timeout=60s")
	wantEqual(t, "image after the undo", k.jsonpath(t, "{.spec.template.spec.containers[0].image}", "get", "deployment", "web"), "busybox:1")
}
