package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// podCIDRFile, in the runtime's state directory, remembers the node's
// pod CIDR once the API has given it. A restarted agent then brings its
// overlay and gossip member up before it reaches an API server, so the
// data plane converges by gossip alone while the servers have no quorum
// (the userspace IPIP tunnel lives in the agent process: without this an
// agent restarted during an outage would leave its node cut off).
const podCIDRFile = "pod-cidr"

// cidrSource says where a pod CIDR known before registering came from.
type cidrSource string

const (
	cidrFromConfig cidrSource = "--pod-cidr"
	cidrFromState  cidrSource = "state directory"
)

// knownPodCIDR is the pod CIDR the agent can set its network up with
// before it has talked to an API server: Config.PodCIDR, else the one
// remembered by an earlier run. An invalid prefix means neither.
func (a *Agent) knownPodCIDR() (netip.Prefix, cidrSource, error) {
	if a.cfg.PodCIDR.IsValid() {
		return a.cfg.PodCIDR, cidrFromConfig, nil
	}
	path := a.podCIDRPath()
	if path == "" {
		return netip.Prefix{}, "", nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return netip.Prefix{}, "", nil
	}
	if err != nil {
		return netip.Prefix{}, "", fmt.Errorf("agent: remembered pod CIDR: %w", err)
	}
	p, err := netip.ParsePrefix(strings.TrimSpace(string(b)))
	if err != nil || !a.cfg.ClusterCIDR.Contains(p.Addr()) {
		// A damaged file costs only the early start: the API has the
		// truth, and the file is rewritten from it.
		a.log.Warn("ignoring the remembered pod CIDR", "file", path, "content", strings.TrimSpace(string(b)), "err", err)
		return netip.Prefix{}, "", nil
	}
	return p, cidrFromState, nil
}

func (a *Agent) podCIDRPath() string {
	if a.cfg.Runtime.StateDir == "" {
		return ""
	}
	return filepath.Join(a.cfg.Runtime.StateDir, podCIDRFile)
}

// rememberPodCIDR writes p to podCIDRFile (through a rename, so a crash
// leaves the old content or the new).
func (a *Agent) rememberPodCIDR(p netip.Prefix) error {
	path := a.podCIDRPath()
	if path == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("agent: remember pod CIDR: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(p.String()+"\n"), 0o600); err != nil {
		return fmt.Errorf("agent: remember pod CIDR: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("agent: remember pod CIDR: %w", err)
	}
	return nil
}

// checkPodCIDR compares the Node's pod CIDR from the API with the one
// the network was set up with before registering. They differ only when
// the Node was deleted and given another, or --pod-cidr changed: pods
// of the old range cannot simply move, so the agent stops with an error
// that says what to do (and forgets a remembered CIDR, so that the next
// start takes the API's).
func (a *Agent) checkPodCIDR(api, early netip.Prefix, from cidrSource) error {
	if api == early {
		return nil
	}
	if from == cidrFromState {
		if err := os.Remove(a.podCIDRPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			a.log.Warn("forgetting the remembered pod CIDR", "err", err)
		}
		return fmt.Errorf("agent: node %s has pod CIDR %s in the API, but this node's network was set up with %s (remembered in %s); forgot it: start the agent again to use %s",
			a.cfg.NodeName, api, early, a.podCIDRPath(), api)
	}
	return fmt.Errorf("agent: --pod-cidr %s, but node %s has pod CIDR %s in the API", early, a.cfg.NodeName, api)
}

// waitPodCIDR waits for node IPAM to give the node its pod CIDR.
func (a *Agent) waitPodCIDR(ctx context.Context) (netip.Prefix, error) {
	for i := 0; ; i++ {
		n, err := a.client.CoreV1().Nodes().Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
		if err == nil && n.Spec.PodCIDR != "" {
			p, err := netip.ParsePrefix(n.Spec.PodCIDR)
			if err != nil {
				return netip.Prefix{}, fmt.Errorf("agent: node %s: pod CIDR %q: %w", a.cfg.NodeName, n.Spec.PodCIDR, err)
			}
			return p, nil
		}
		if i%50 == 10 {
			a.log.Info("waiting for the node's pod CIDR (node IPAM on the controller manager)", "err", err)
		}
		select {
		case <-ctx.Done():
			return netip.Prefix{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
