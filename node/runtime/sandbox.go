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
	"strings"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/barge-dev/barge/node/hostport"
	"github.com/barge-dev/barge/overlay/podnet"
)

// Sandbox is a pod's network: its pinned namespace and address.
type Sandbox struct {
	ID    string
	Netns string
	IP    netip.Addr
	// HostNetwork: Netns is the node's own.
	HostNetwork bool
}

func shortHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// idPart makes s (a pod or container name) fit containerd's identifier
// grammar, ^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$, in at most n bytes.
// Kubernetes names may hold runs of separators ("a--b") and a cut may
// end in one; both are invalid to containerd, so runs collapse to their
// first separator and a trailing one goes. A name that was valid and
// short stays as it was, so IDs made before are still found.
func idPart(s string, n int) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.' || c == '_' || c == '-':
			if len(b) == 0 || isSep(b[len(b)-1]) {
				continue
			}
		default:
			continue
		}
		b = append(b, c)
	}
	if len(b) > n {
		b = b[:n]
	}
	for len(b) > 0 && isSep(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return "x"
	}
	return string(b)
}

func isSep(c byte) bool { return c == '.' || c == '_' || c == '-' }

// SandboxID is the containerd ID of a pod's sandbox: derived from the
// UID, so a restarted agent finds it.
func SandboxID(pod *corev1.Pod) string {
	return "sb-" + idPart(pod.Name, 40) + "-" + shortHash(string(pod.UID))
}

// ContainerID is the containerd ID of one run of a container.
func ContainerID(pod *corev1.Pod, container string, restartCount int) string {
	return fmt.Sprintf("%s-%s-%d", idPart(container, 40), shortHash(string(pod.UID)), restartCount)
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
	if pod.Spec.HostNetwork {
		return r.ensureHostSandbox(ctx, pod)
	}
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
	if err := r.mapHostPorts(ctx, pod, sb.IP); err != nil {
		return nil, fmt.Errorf("runtime: sandbox of %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	if err := r.recordSandbox(ctx, pod, sb); err != nil {
		return nil, err
	}
	return sb, nil
}

// ensureHostSandbox is the sandbox of a hostNetwork pod: its containers
// join the node's own network namespace (Config.HostNetns, or the
// agent's: runc opens the path from the shim, which may live elsewhere,
// so it names the agent's process rather than "self"), and its address
// is the node's. Its ports are the node's, so no hostPort is mapped.
func (r *Runtime) ensureHostSandbox(ctx context.Context, pod *corev1.Pod) (*Sandbox, error) {
	if !r.cfg.NodeIP.IsValid() {
		return nil, fmt.Errorf("runtime: hostNetwork pod %s/%s: the runtime has no node IP", pod.Namespace, pod.Name)
	}
	path := r.cfg.HostNetns
	if path == "" {
		path = fmt.Sprintf("/proc/%d/ns/net", os.Getpid())
	}
	sb := &Sandbox{ID: SandboxID(pod), Netns: path, IP: r.cfg.NodeIP, HostNetwork: true}
	if err := r.recordSandbox(ctx, pod, sb); err != nil {
		return nil, err
	}
	return sb, nil
}

// recordSandbox keeps the sandbox in containerd, where a restarted agent
// and the orphan sweep find it.
func (r *Runtime) recordSandbox(ctx context.Context, pod *corev1.Pod, sb *Sandbox) error {
	id := sb.ID
	labels := podLabels(pod)
	labels[LabelKind] = KindSandbox
	labels[LabelNetns] = sb.Netns
	labels[labelPodIP] = sb.IP.String()
	c, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		_, err = r.client.NewContainer(ctx, id, containerd.WithContainerLabels(labels),
			containerd.WithSpec(&specs.Spec{Version: specs.Version}))
		if err != nil && !errdefs.IsAlreadyExists(err) {
			return fmt.Errorf("runtime: record sandbox of %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		return nil
	} else if err != nil {
		return fmt.Errorf("runtime: sandbox of %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	// A hostNetwork sandbox names the agent's process, which a restart
	// changes; port-forward reads the path from here.
	old, err := c.Labels(ctx)
	if err == nil && old[LabelNetns] != sb.Netns {
		_, err = c.SetLabels(ctx, map[string]string{LabelNetns: sb.Netns})
	}
	if err != nil {
		return fmt.Errorf("runtime: sandbox of %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
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
		errs = append(errs, inNetns(r.cfg.HostNetns, func() error { return r.ports.Remove(ctx, uid) }))
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

// mapHostPorts opens the pod's hostPorts on the node, as the kubelet's
// CNI portmap plugin does: every port of its containers that names one.
func (r *Runtime) mapHostPorts(ctx context.Context, pod *corev1.Pod, ip netip.Addr) error {
	ms, err := HostPorts(pod, ip)
	if err != nil {
		return err
	}
	return inNetns(r.cfg.HostNetns, func() error { return r.ports.Set(ctx, string(pod.UID), ms) })
}

// HostPorts lists the pod's hostPort mappings to ip.
func HostPorts(pod *corev1.Pod, ip netip.Addr) ([]hostport.Mapping, error) {
	var ms []hostport.Mapping
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			m := hostport.Mapping{HostPort: uint16(p.HostPort), PodIP: ip, PodPort: uint16(p.ContainerPort), Protocol: strings.ToLower(string(p.Protocol))}
			if m.Protocol == "" {
				m.Protocol = "tcp"
			}
			if p.HostIP != "" {
				a, err := netip.ParseAddr(p.HostIP)
				if err != nil {
					return nil, fmt.Errorf("container %s port %d: hostIP %q: %w", c.Name, p.ContainerPort, p.HostIP, err)
				}
				if !a.IsUnspecified() {
					m.HostIP = a
				}
			}
			ms = append(ms, m)
		}
	}
	return ms, nil
}
