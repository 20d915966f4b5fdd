package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/barge-dev/barge/node/image"
	"github.com/barge-dev/barge/overlay/netnstest"
	"github.com/barge-dev/barge/raftstore/pki"
)

// testInCluster runs client-go's in-cluster configuration in a pod
// against the API server, with the pod's projected service account token
// and the KUBERNETES_SERVICE_HOST/PORT the agent puts in its environment
// (the default/kubernetes Service, as the kubelet does).
//
// Why this shape: busybox's wget has TLS but verifies no certificate (it
// has no --ca-certificate), so it could not show that the service
// account CA and token work; the client is a static Go program
// (testdata/incluster, rest.InClusterConfig) built into an image with
// node/image. This harness runs no Service proxy, so the ClusterIP goes
// nowhere; the test gives the pod's network namespace the ClusterIP on
// its loopback and forwards ClusterIP:443 there to the API server, which
// listens on 127.0.0.1 of the test's own namespace. The pod's client so
// dials exactly the address its environment names, and verifies the API
// server's certificate (which has the ClusterIP as a SAN) with the CA of
// its projected volume.
func testInCluster(t *testing.T, h *harness) {
	ctx := context.Background()
	ns := h.namespace(t)
	ref := buildInClusterImage(t, h)
	svc, err := h.admin.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	clusterIP, port := svc.Spec.ClusterIP, strconv.Itoa(int(svc.Spec.Ports[0].Port))

	p := h.pod("incluster", "n1", "exec sleep 3600")
	p.Spec.Containers[0].Image = ref
	h.createPod(t, ns, p)
	p = h.waitPod(t, ns, "incluster", "running", running)
	pid := taskPID(t, h, "n1", p.Status.ContainerStatuses[0].ContainerID)
	forwardInto(t, fmt.Sprintf("/proc/%d/ns/net", pid), net.JoinHostPort(clusterIP, port), h.api.Addr(0))

	k := h.kubectl(t)
	if got := k.run(t, "", "exec", "-n", ns, "incluster", "--", "sh", "-c", "echo $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"); got != clusterIP+":"+port+"\n" {
		t.Errorf("in-cluster environment %q, want the kubernetes Service %s:%s", got, clusterIP, port)
	}
	out := k.run(t, "", "exec", "-n", ns, "incluster", "--", "/bin/incluster")
	host, body, _ := strings.Cut(out, "\n")
	if want := "host=https://" + net.JoinHostPort(clusterIP, port); host != want {
		t.Errorf("client-go's in-cluster host %q, want %q", host, want)
	}
	var review struct {
		Status struct {
			UserInfo struct {
				Username string              `json:"username"`
				Extra    map[string][]string `json:"extra"`
			} `json:"userInfo"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(body), &review); err != nil {
		t.Fatalf("SelfSubjectReview from the pod: %v\n%s", err, out)
	}
	u := review.Status.UserInfo
	if want := "system:serviceaccount:" + ns + ":default"; u.Username != want {
		t.Errorf("the pod is %q to the API server, want %q", u.Username, want)
	}
	// The token is the pod's bound one (projected, audience the API
	// server, bound to this pod), not a legacy secret.
	if got := u.Extra["authentication.kubernetes.io/pod-name"]; len(got) != 1 || got[0] != "incluster" {
		t.Errorf("token bound to pod %v, want [incluster]", got)
	}
	if got := u.Extra["authentication.kubernetes.io/pod-uid"]; len(got) != 1 || got[0] != string(p.UID) {
		t.Errorf("token bound to pod UID %v, want [%s]", got, p.UID)
	}
}

// buildInClusterImage builds testdata/incluster statically and pushes
// busybox with it as /bin/incluster to the harness's registry.
func buildInClusterImage(t *testing.T, h *harness) string {
	t.Helper()
	ctx := context.Background()
	bin := filepath.Join(t.TempDir(), "incluster")
	gobin := filepath.Join(goroot(t), "bin", "go")
	cmd := exec.Command(gobin, "build", "-trimpath", "-o", bin, "./testdata/incluster")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the in-cluster client: %v\n%s", err, out)
	}
	spec, _ := image.Recipe("busybox")
	spec.Name = "incluster"
	spec.Files = append(spec.Files, image.File{Path: "/bin/incluster", Host: bin, Mode: "0755"})
	img, err := image.Build(ctx, spec, image.BuildOptions{CacheDir: image.DefaultCacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	ref := h.registry + "/incluster:latest"
	if _, err := image.Push(ctx, img, ref, filepath.Join(h.api.Store.CertsDir, pki.CACertFile)); err != nil {
		t.Fatal(err)
	}
	return ref
}

// goroot is the toolchain the test was built with (go env GOROOT), so
// the client is built by the same go.
func goroot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// forwardInto gives the network namespace at nsPath the address of
// listen on its loopback, listens there and forwards each connection to
// target, dialled from the test's own namespace. It stops when the test
// ends.
func forwardInto(t *testing.T, nsPath, listen, target string) {
	t.Helper()
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	err = netnstest.Do(nsPath, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		addr, err := netlink.ParseAddr(host + "/32")
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(lo, addr); err != nil {
			return fmt.Errorf("address %s on lo: %w", host, err)
		}
		ln, err = net.Listen("tcp", listen)
		return err
	})
	if err != nil {
		t.Fatalf("forwarder in %s: %v", nsPath, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	track := func(cs ...net.Conn) func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range cs {
			open[c] = true
		}
		return func() {
			mu.Lock()
			defer mu.Unlock()
			for _, c := range cs {
				c.Close()
				delete(open, c)
			}
		}
	}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				u, err := net.DialTimeout("tcp", target, 10*time.Second)
				if err != nil {
					c.Close()
					return
				}
				done := track(c, u)
				defer done()
				copied := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(u, c); copied <- struct{}{} }()
				go func() { _, _ = io.Copy(c, u); copied <- struct{}{} }()
				<-copied
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}
