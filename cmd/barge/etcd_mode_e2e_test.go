package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/barge-dev/barge/raftstore/loopport"
)

// TestKubectlOnExternalEtcd runs two barge servers in --etcd-servers mode
// on Debian's etcd, as a user migrating from etcd would: the same API
// server, with the leader-only controllers under Kubernetes' Lease
// election instead of Raft leadership.
func TestKubectlOnExternalEtcd(t *testing.T) {
	etcdBin := requireTool(t, "etcd")
	kubectlPath := requireKubectl(t, builtKubectlVersion)
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	mustRun(t, bargeBin, "certs", "init", "--dir", certs, "--hosts", "127.0.0.1")

	client, peer := loopport.Addr(t), loopport.Addr(t)
	etcd := exec.Command(etcdBin, "--name", "e1", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", "https://"+client, "--advertise-client-urls", "https://"+client,
		"--listen-peer-urls", "http://"+peer, "--initial-advertise-peer-urls", "http://"+peer,
		"--initial-cluster", "e1=http://"+peer,
		"--cert-file", filepath.Join(certs, "server.crt"), "--key-file", filepath.Join(certs, "server.key"),
		"--trusted-ca-file", filepath.Join(certs, "ca.crt"), "--client-cert-auth")
	var etcdLog bytes.Buffer
	etcd.Stdout, etcd.Stderr = &etcdLog, &etcdLog
	if err := etcd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		etcd.Process.Kill()
		etcd.Wait()
		if t.Failed() {
			t.Logf("--- etcd log ---\n%s", etcdLog.String())
		}
	})

	var apis []string
	for _, name := range []string{"e1", "e2"} {
		api := loopport.Addr(t)
		apis = append(apis, api)
		var log bytes.Buffer
		cmd := exec.Command(bargeBin, "server", "--name", name, "--data-dir", filepath.Join(dir, name), "--certs", certs,
			"--api-addr", api, "--etcd-servers", "https://"+client)
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			if t.Failed() {
				t.Logf("--- %s log ---\n%s", name, log.String())
			}
		})
	}
	k := kubectl{version: builtKubectlVersion, path: kubectlPath, kubeconfig: filepath.Join(certs, "admin.kubeconfig"),
		server: "https://" + apis[1], home: t.TempDir()}
	for _, api := range apis {
		k := k
		k.server = "https://" + api
		waitUntil(t, 60*time.Second, "API server on "+api+" ready", func() (string, bool) {
			out, err := k.run(t, "get", "--raw", "/readyz")
			return out, err == nil && strings.TrimSpace(out) == "ok"
		})
	}

	wantEqual(t, "create namespace", strings.TrimSpace(k.must(t, "create", "namespace", "migrated")), "namespace/migrated created")
	k.must(t, "create", "configmap", "settings", "-n", "migrated", "--from-literal=mode=prod")
	wantEqual(t, "configmap read back", k.jsonpath(t, "{.data.mode}", "get", "cm", "settings", "-n", "migrated"), "prod")
	// The objects sit in etcd where kube-apiserver always keeps them.
	keys := mustRun(t, requireTool(t, "etcdctl"), "--endpoints", "https://"+client,
		"--cacert", filepath.Join(certs, "ca.crt"), "--cert", filepath.Join(certs, "admin.crt"), "--key", filepath.Join(certs, "admin.key"),
		"get", "/registry/configmaps/migrated/settings", "--keys-only")
	wantOutput(t, "etcdctl get", keys, "/registry/configmaps/migrated/settings")

	// One of the two servers holds the Lease, and its controllers act:
	// the service account controller gives the namespace its default
	// account, and the namespace controller finishes a deletion.
	waitUntil(t, 60*time.Second, "a holder of the controllers' lease", func() (string, bool) {
		out, err := k.run(t, "get", "lease", "barge-controllers", "-n", "kube-system", "-o", "jsonpath={.spec.holderIdentity}")
		return out, err == nil && (strings.HasPrefix(out, "e1") || strings.HasPrefix(out, "e2"))
	})
	waitUntil(t, 60*time.Second, "the default service account", func() (string, bool) {
		out, err := k.run(t, "get", "serviceaccount", "default", "-n", "migrated")
		return out, err == nil
	})
	k.must(t, "delete", "namespace", "migrated", "--wait=false")
	waitUntil(t, 60*time.Second, "the namespace gone", func() (string, bool) {
		out, err := k.run(t, "get", "namespace", "migrated")
		return out, err != nil && strings.Contains(out, "NotFound")
	})
}
