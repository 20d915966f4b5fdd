package agent_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/barge-dev/barge/node/containerdtest"
	"github.com/barge-dev/barge/raftstore/pki"
)

// kubectlCLI runs the real kubectl as the apitest admin.
type kubectlCLI struct {
	path       string
	kubeconfig string
	home       string
}

// newestKubectl is the newest kubectl.1.N beside the kubectl on PATH
// (the image ships several client versions there), or that kubectl.
func newestKubectl(t *testing.T) string {
	t.Helper()
	path := containerdtest.RequireBinary(t, "kubectl", "kubectl")
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return path
	}
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(real), "kubectl.1.*"))
	minor := func(p string) int {
		n, _ := strconv.Atoi(strings.TrimPrefix(filepath.Base(p), "kubectl.1."))
		return n
	}
	sort.Slice(matches, func(i, j int) bool { return minor(matches[i]) > minor(matches[j]) })
	if len(matches) > 0 {
		return matches[0]
	}
	return path
}

func (h *harness) kubectl(t *testing.T) *kubectlCLI {
	t.Helper()
	certs := h.api.Store.CertsDir
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(certs, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	dir := t.TempDir()
	k := &kubectlCLI{path: newestKubectl(t), kubeconfig: filepath.Join(dir, "admin.kubeconfig"), home: dir}
	if err := pki.WriteKubeconfig(k.kubeconfig, "https://"+h.api.Addr(0), read(pki.CACertFile), read(pki.AdminCertFile), read(pki.AdminKeyFile), "admin"); err != nil {
		t.Fatal(err)
	}
	return k
}

// command is kubectl with args, its environment cut down to HOME (its
// cache) so no KUBECONFIG of the machine leaks in.
func (k *kubectlCLI) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, k.path, append([]string{"--kubeconfig", k.kubeconfig}, args...)...)
	cmd.Env = []string{"HOME=" + k.home, "PATH=" + os.Getenv("PATH")}
	return cmd
}

// run runs kubectl to its end with stdin and returns stdout, failing the
// test on an error.
func (k *kubectlCLI) run(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := k.try(stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func (k *kubectlCLI) try(stdin string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := k.command(ctx, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// start starts a kubectl that runs until the test ends (logs -f,
// port-forward); its stdout and stderr go to out.
func (k *kubectlCLI) start(t *testing.T, out io.Writer, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := k.command(ctx, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
}

// testKubectl drives the agent's kubelet API with the real kubectl,
// through the API server: logs -f and --previous, exec -i with stdin,
// port-forward to a server in the pod, cp both ways.
func testKubectl(t *testing.T, h *harness) {
	ns := h.namespace(t)
	k := h.kubectl(t)
	// The container serves /www on 8080 (busybox httpd puts itself in
	// the background), logs a line, and logs a second one when the test
	// writes to its FIFO, so `logs -f` must show a line written after it
	// started.
	p := h.pod("tools", "n1", `mkdir -p /www && echo hello-pf > /www/index.html && httpd -p 8080 -h /www && mkfifo /tmp/next && echo first line && read l < /tmp/next && echo "$l" && exec sleep 3600`)
	h.createPod(t, ns, p)
	// The first run exits 1, the second stays up: its previous run's log
	// is what `logs --previous` reads.
	r := h.pod("restarts", "n1", `n=$(cat /d/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /d/n; echo run $n; [ $n -gt 1 ] || exit 1; exec sleep 3600`)
	r.Spec.Volumes = []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	r.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "d", MountPath: "/d"}}
	h.createPod(t, ns, r)
	h.waitPod(t, ns, "tools", "running", running)

	t.Run("LogsFollow", func(t *testing.T) {
		var out syncBuffer
		k.start(t, &out, "logs", "-f", "-n", ns, "tools")
		h.eventually(t, "logs -f shows the first line", func() (bool, string) {
			return strings.Contains(out.String(), "first line\n"), out.String()
		})
		k.run(t, "", "exec", "-n", ns, "tools", "--", "sh", "-c", "echo written after follow started > /tmp/next")
		h.eventually(t, "logs -f shows the line written after it started", func() (bool, string) {
			return out.String() == "first line\nwritten after follow started\n", out.String()
		})
	})

	t.Run("ExecStdin", func(t *testing.T) {
		got := k.run(t, "hello through stdin\n", "exec", "-i", "-n", ns, "tools", "--", "tr", "a-z", "A-Z")
		if got != "HELLO THROUGH STDIN\n" {
			t.Errorf("exec -i: %q, want the upper-cased stdin", got)
		}
		// The exit code of the command is kubectl's.
		_, _, err := k.try("", "exec", "-n", ns, "tools", "--", "sh", "-c", "exit 7")
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
			t.Errorf("exec of exit 7: %v, want kubectl to exit 7", err)
		}
	})

	t.Run("PortForward", func(t *testing.T) {
		var out syncBuffer
		k.start(t, &out, "port-forward", "-n", ns, "pod/tools", "--address", "127.0.0.1", ":8080")
		re := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> 8080`)
		var port string
		h.eventually(t, "port-forward listening", func() (bool, string) {
			m := re.FindStringSubmatch(out.String())
			if m != nil {
				port = m[1]
			}
			return m != nil, out.String()
		})
		// Two connections through the one forwarding session.
		for i := range 2 {
			c := http.Client{Timeout: 30 * time.Second}
			resp, err := c.Get("http://127.0.0.1:" + port + "/")
			if err != nil {
				t.Fatalf("GET %d through port-forward: %v\nkubectl: %s", i, err, out.String())
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(b) != "hello-pf\n" {
				t.Errorf("GET %d through port-forward: %q %v, want the pod's page", i, b, err)
			}
		}
	})

	t.Run("Copy", func(t *testing.T) {
		dir := t.TempDir()
		data := strings.Repeat("barge kubectl cp\n", 5000)
		if err := os.WriteFile(filepath.Join(dir, "up.txt"), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		// kubectl cp runs tar in the container: busybox has it.
		k.run(t, "", "cp", filepath.Join(dir, "up.txt"), ns+"/tools:/tmp/up.txt")
		if got := k.run(t, "", "exec", "-n", ns, "tools", "--", "md5sum", "/tmp/up.txt"); !strings.HasPrefix(got, md5hex(data)) {
			t.Errorf("md5sum in the container %q, want %s", got, md5hex(data))
		}
		k.run(t, "", "exec", "-n", ns, "tools", "--", "sh", "-c", "mkdir -p /tmp/tree/sub && echo one > /tmp/tree/a && echo two > /tmp/tree/sub/b")
		k.run(t, "", "cp", ns+"/tools:/tmp/tree", filepath.Join(dir, "tree"))
		for path, want := range map[string]string{"a": "one\n", "sub/b": "two\n"} {
			if got, err := os.ReadFile(filepath.Join(dir, "tree", path)); err != nil || string(got) != want {
				t.Errorf("copied back %s: %q %v, want %q", path, got, err, want)
			}
		}
	})

	t.Run("LogsPrevious", func(t *testing.T) {
		h.waitPod(t, ns, "restarts", "running after a restart", func(p *corev1.Pod) bool {
			return running(p) && p.Status.ContainerStatuses[0].RestartCount == 1
		})
		h.eventually(t, "logs of the current run", func() (bool, string) {
			out, errOut, err := k.try("", "logs", "-n", ns, "restarts")
			return err == nil && out == "run 2\n", fmt.Sprint(out, errOut, err)
		})
		if got := k.run(t, "", "logs", "--previous", "-n", ns, "restarts"); got != "run 1\n" {
			t.Errorf("logs --previous: %q, want the first run's", got)
		}
	})
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}
