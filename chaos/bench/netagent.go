package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"runtime/pprof"

	"github.com/barge-dev/barge/overlay"
	"github.com/barge-dev/barge/overlay/egress"
	"github.com/barge-dev/barge/overlay/ipip"
	"github.com/barge-dev/barge/overlay/podnet"
	"github.com/barge-dev/barge/overlay/vxlan"
)

// NetAgentSpec is what one bench host's agent is told: the same wiring a
// node agent does with the overlay packages, minus gossip (the peer set is
// fixed for the run).
type NetAgentSpec struct {
	Mode        string            `json:"mode"` // vxlan or ipip-userspace
	Local       overlay.LocalNode `json:"local"`
	Peers       []overlay.Peer    `json:"peers"`
	ClusterCIDR netip.Prefix      `json:"clusterCIDR"`
	StateDir    string            `json:"stateDir"`
	PodID       string            `json:"podID"`
	PodNetns    string            `json:"podNetns"`
	// CPUProfile, when set, is where the agent writes a Go CPU profile
	// of its whole run (to see where the userspace tunnel spends).
	CPUProfile string `json:"cpuProfile,omitempty"`
}

// NetAgentReady is the line the agent prints once its pod is reachable.
type NetAgentReady struct {
	Attrs overlay.Attrs     `json:"attrs"`
	Pod   podnet.PodNetwork `json:"pod"`
}

// RunNetAgent sets the overlay up inside the current network namespace
// (the bench starts it in a host's), wires the pod, prints a
// NetAgentReady line on out, and keeps the data path running until in
// reaches EOF (the bench closes it at the end of a run).
func RunNetAgent(ctx context.Context, spec NetAgentSpec, in io.Reader, out io.Writer, log *slog.Logger) error {
	if spec.CPUProfile != "" {
		f, err := os.Create(spec.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var b overlay.Backend
	switch spec.Mode {
	case "vxlan":
		b = vxlan.New(vxlan.Config{Logger: log})
	case "vxlan-txcsum-off":
		// flannel's setting, for comparison with the kernel-version rule.
		b = vxlan.New(vxlan.Config{TxChecksumOffload: vxlan.OffloadOff, Logger: log})
	case "ipip-userspace":
		b = ipip.New(ipip.Config{Mode: ipip.ModeUserspace, Logger: log})
	case "ipip":
		b = ipip.New(ipip.Config{Logger: log})
	default:
		return fmt.Errorf("bench agent: unknown mode %q", spec.Mode)
	}
	attrs, err := b.Setup(ctx, spec.Local)
	if err != nil {
		return err
	}
	defer b.Close()
	pods, err := podnet.New(ctx, podnet.Config{StateDir: spec.StateDir, PodCIDR: spec.Local.PodCIDR, MTU: attrs.MTU, Logger: log})
	if err != nil {
		return err
	}
	defer pods.Close()
	if err := egress.Ensure(ctx, egress.Config{PodCIDR: spec.Local.PodCIDR, ClusterCIDR: spec.ClusterCIDR}); err != nil {
		return err
	}
	if err := b.SetPeers(ctx, spec.Peers); err != nil {
		return err
	}
	pn, err := pods.Attach(ctx, podnet.PodRef{ID: spec.PodID, Namespace: "bench", Name: spec.PodID}, spec.PodNetns)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(out).Encode(NetAgentReady{Attrs: attrs, Pod: pn}); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, in); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if ib, ok := b.(*ipip.Backend); ok {
		log.Info("tunnel counters", "stats", fmt.Sprintf("%+v", ib.Stats()))
	}
	return nil
}
