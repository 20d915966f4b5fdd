package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/barge-dev/barge/overlay/podnet"
)

// Sandbox is a pod's network: its pinned namespace and address.
type Sandbox struct {
	ID    string
	Netns string
	IP    netip.Addr
}

func shortHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// SandboxID is the containerd ID of a pod's sandbox: derived from the
// UID, so a restarted agent finds it.
func SandboxID(pod *corev1.Pod) string {
	return "sb-" + truncate(pod.Name, 40) + "-" + shortHash(string(pod.UID))
}

// ContainerID is the containerd ID of one run of a container.
func ContainerID(pod *corev1.Pod, container string, restartCount int) string {
	return fmt.Sprintf("%s-%s-%d", truncate(container, 40), shortHash(string(pod.UID)), restartCount)
}

func podLabels(pod *corev1.Pod) map[string]string {
	return map[string]string{
		LabelPodNamespace: pod.Namespace,
		LabelPodName:      pod.Name,
		LabelPodUID:       string(pod.UID),
	}
}

// EnsureSandbox makes (or finds intact) the pod's network namespace, wires
// it into the node's pod network and records the sandbox in containerd.
// It is idempotent: a restarted agent gets the same namespace and address.
func (r *Runtime) EnsureSandbox(ctx context.Context, pod *corev1.Pod) (*Sandbox, error) {
	ctx = r.ctx(ctx)
	n, err := r.network()
	if err != nil {
		return nil, err
	}
	id := SandboxID(pod)
	path := filepath.Join(r.cfg.StateDir, "netns", id)
	if !isNetnsMount(path) {
		_ = podnet.DeleteNetns(path)
		if path, err = podnet.CreateNetns(filepath.Dir(path), id); err != nil {
			return nil, fmt.Errorf("runtime: sandbox of %s/%s: %w", pod.Namespace, pod.Name, err)
		}
	}
	var pn podnet.PodNetwork
	err = inNetns(r.cfg.HostNetns, func() error {
		var err error
		pn, err = n.Attach(ctx, podnet.PodRef{ID: string(pod.UID), Namespace: pod.Namespace, Name: pod.Name}, path)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("runtime: sandbox of %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	sb := &Sandbox{ID: id, Netns: path, IP: pn.IP.Addr()}
	labels := podLabels(pod)
	labels[LabelKind] = KindSandbox
	labels[LabelNetns] = path
	labels[labelPodIP] = sb.IP.String()
	if _, err := r.client.LoadContainer(ctx, id); errdefs.IsNotFound(err) {
		_, err = r.client.NewContainer(ctx, id, containerd.WithContainerLabels(labels),
			containerd.WithSpec(&specs.Spec{Version: specs.Version}))
		if err != nil && !errdefs.IsAlreadyExists(err) {
			return nil, fmt.Errorf("runtime: record sandbox of %s/%s: %w", pod.Namespace, pod.Name, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("runtime: sandbox of %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return sb, nil
}

// isNetnsMount reports whether path is a pinned network namespace (and
// not an empty file left behind by a reboot, say).
func isNetnsMount(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// RemoveSandbox detaches the pod from the network, unpins its namespace
// and deletes the sandbox record. The pod's containers must be gone.
func (r *Runtime) RemoveSandbox(ctx context.Context, pod *corev1.Pod) error {
	return r.removeSandbox(ctx, SandboxID(pod), string(pod.UID))
}

func (r *Runtime) removeSandbox(ctx context.Context, id, uid string) error {
	ctx = r.ctx(ctx)
	var errs []error
	if n, err := r.network(); err == nil {
		errs = append(errs, inNetns(r.cfg.HostNetns, func() error { return n.Detach(ctx, uid) }))
	} else {
		errs = append(errs, err)
	}
	errs = append(errs, podnet.DeleteNetns(filepath.Join(r.cfg.StateDir, "netns", id)))
	if c, err := r.client.LoadContainer(ctx, id); err == nil {
		if err := c.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	} else if !errdefs.IsNotFound(err) {
		errs = append(errs, err)
	}
	if err := UnmountUnder(r.PodDataDir(uid)); err != nil {
		errs = append(errs, err)
	} else if err := os.RemoveAll(r.PodDataDir(uid)); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("runtime: remove sandbox %s: %w", id, err)
	}
	return nil
}
