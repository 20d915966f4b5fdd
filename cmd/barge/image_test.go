package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/barge-dev/barge/node/containerdtest"
	"github.com/barge-dev/barge/node/image"
	"github.com/barge-dev/barge/raftstore/loopport"
	"github.com/barge-dev/barge/raftstore/pki"
)

// TestImageCLI drives barge image as an operator would: build to an
// archive, push it to a registry signed by the cluster CA, list the
// registry, save it back, import it into a node's containerd namespace
// and list that.
func TestImageCLI(t *testing.T) {
	containerdtest.RequireRoot(t)
	containerdtest.RequireBinary(t, image.RegistryBinary, "docker-registry")
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	if err := pki.InitDir(certs, pki.InitOptions{Hosts: []string{"127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	addr := loopport.Addr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg, err := image.StartRegistry(ctx, image.RegistryConfig{Dir: filepath.Join(dir, "registry"), Addr: addr, CertsDir: certs,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Stop()
	d := containerdtest.Start(t)

	barge := func(args ...string) (string, error) {
		cmd := exec.Command(bargeBin, append([]string{"image"}, args...)...)
		cmd.Env = append(os.Environ(), "BARGE_CERTS="+certs)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := barge(args...)
		if err != nil {
			t.Fatalf("barge image %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	archive := filepath.Join(dir, "busybox.tar")
	if out := must("build", "busybox", "-o", archive, "--tag", addr+"/busybox:latest"); !strings.Contains(out, "sha256:") {
		t.Fatalf("build: %s", out)
	}
	must("push", archive, addr+"/busybox:latest")
	must("push", archive, addr+"/busybox:v1")
	var repos []image.RemoteRepo
	if err := json.Unmarshal([]byte(must("ls", addr, "-o", "json")), &repos); err != nil {
		t.Fatal(err)
	}
	if len(repos) != 1 || repos[0].Name != "busybox" || strings.Join(repos[0].Tags, ",") != "latest,v1" {
		t.Fatalf("registry: %+v", repos)
	}
	if out := must("ls", addr); !strings.Contains(out, addr+"/busybox") {
		t.Fatalf("ls table: %s", out)
	}

	saved := filepath.Join(dir, "saved.tar")
	must("save", addr+"/busybox:v1", saved, "--format", "oci")
	out := must("import", saved, "--address", d.Address, "--namespace", "node1")
	if !strings.Contains(out, "Imported "+addr+"/busybox:v1") {
		t.Fatalf("import: %s", out)
	}
	var local []image.LocalImage
	if err := json.Unmarshal([]byte(must("ls", "--namespace", "node1", "--address", d.Address, "-o", "json")), &local); err != nil {
		t.Fatal(err)
	}
	if len(local) != 1 || local[0].Name != addr+"/busybox:v1" {
		t.Fatalf("namespace node1: %+v", local)
	}

	hosts := filepath.Join(dir, "hosts")
	must("trust", addr, "--hosts-dir", hosts)
	if b, err := os.ReadFile(filepath.Join(hosts, addr, image.HostsFile)); err != nil || !strings.Contains(string(b), filepath.Join(certs, pki.CACertFile)) {
		t.Fatalf("hosts.toml: %v\n%s", err, b)
	}

	for _, bad := range [][]string{
		{"push", archive, "127.0.0.1:1/x:y"},                          // nobody listens
		{"save", addr + "/busybox:nope", filepath.Join(dir, "x.tar")}, // no such tag
		{"build", "redis", "-o", filepath.Join(dir, "r.tar")},         // no such recipe
		{"build", "busybox"},                                          // nowhere to put it
		{"ls"},
		{"import", archive}, // no namespace
	} {
		if out, err := barge(bad...); err == nil {
			t.Errorf("barge image %s succeeded:\n%s", strings.Join(bad, " "), out)
		}
	}
	if out, _ := barge("save", addr+"/busybox:nope", filepath.Join(dir, "x.tar")); !strings.Contains(out, "not found") {
		t.Errorf("save of a missing tag: %s", out)
	}
}
