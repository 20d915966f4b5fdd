package overlay_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"testing"

	"github.com/barge-dev/barge/overlay"
	"github.com/barge-dev/barge/overlay/egress"
	"github.com/barge-dev/barge/overlay/ipip"
	"github.com/barge-dev/barge/overlay/netnstest"
	"github.com/barge-dev/barge/overlay/podnet"
	"github.com/barge-dev/barge/overlay/vxlan"
)

func TestMain(m *testing.M) {
	os.Exit(netnstest.Main(m, agentHandlers))
}

// setupArg is what the test hands a node's agent: the same things the
// real agent gets from its flags and its Node object.
type setupArg struct {
	Mode        string // vxlan, ipip (auto), ipip-kernel, ipip-userspace
	Local       overlay.LocalNode
	ClusterCIDR netip.Prefix
	StateDir    string
}

type attachArg struct {
	Pod   podnet.PodRef
	Netns string
}

// agentHandlers plays the node agent inside a host's namespace: the
// wiring any agent does with the overlay packages, one instance per
// helper process.
func agentHandlers() map[string]netnstest.Handler {
	var (
		backend overlay.Backend
		pods    *podnet.Network
	)
	return map[string]netnstest.Handler{
		"setup": func(ctx context.Context, log *slog.Logger, raw json.RawMessage) (any, error) {
			var a setupArg
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, err
			}
			switch a.Mode {
			case "vxlan":
				backend = vxlan.New(vxlan.Config{Logger: log})
			case "vxlan-txcsum-off":
				backend = vxlan.New(vxlan.Config{TxChecksumOffload: vxlan.OffloadOff, Logger: log})
			case "ipip":
				backend = ipip.New(ipip.Config{Logger: log})
			case "ipip-kernel":
				backend = ipip.New(ipip.Config{Mode: ipip.ModeKernel, Logger: log})
			case "ipip-userspace":
				backend = ipip.New(ipip.Config{Mode: ipip.ModeUserspace, Logger: log})
			default:
				return nil, fmt.Errorf("unknown mode %q", a.Mode)
			}
			attrs, err := backend.Setup(ctx, a.Local)
			if err != nil {
				return nil, err
			}
			pods, err = podnet.New(ctx, podnet.Config{StateDir: a.StateDir, PodCIDR: a.Local.PodCIDR, MTU: attrs.MTU, Logger: log})
			if err != nil {
				return nil, err
			}
			if err := egress.Ensure(ctx, egress.Config{PodCIDR: a.Local.PodCIDR, ClusterCIDR: a.ClusterCIDR}); err != nil {
				return nil, err
			}
			return attrs, nil
		},
		"peers": func(ctx context.Context, _ *slog.Logger, raw json.RawMessage) (any, error) {
			var peers []overlay.Peer
			if err := json.Unmarshal(raw, &peers); err != nil {
				return nil, err
			}
			return nil, backend.SetPeers(ctx, peers)
		},
		"attach": func(ctx context.Context, _ *slog.Logger, raw json.RawMessage) (any, error) {
			var a attachArg
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, err
			}
			return pods.Attach(ctx, a.Pod, a.Netns)
		},
		"stats": func(context.Context, *slog.Logger, json.RawMessage) (any, error) {
			b, ok := backend.(*ipip.Backend)
			if !ok {
				return nil, errors.New("stats: not an ipip backend")
			}
			return b.Stats(), nil
		},
		"close": func(context.Context, *slog.Logger, json.RawMessage) (any, error) {
			return nil, errors.Join(backend.Close(), pods.Close())
		},
		"teardown": func(ctx context.Context, _ *slog.Logger, _ json.RawMessage) (any, error) {
			return nil, errors.Join(backend.Teardown(ctx), pods.Close(), egress.Delete(ctx, ""))
		},
	}
}
