package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/rest"

	"github.com/barge-dev/barge/node/agent"
	"github.com/barge-dev/barge/node/gossip"
	"github.com/barge-dev/barge/node/runtime"
	"github.com/barge-dev/barge/overlay"
	"github.com/barge-dev/barge/raftstore"
	"github.com/barge-dev/barge/raftstore/pki"
)

func newAgentCmd() *cobra.Command {
	var (
		name, certs, nodeIP, socket, namespace, stateDir, hostsDir string
		capacity                                                   string
		servers                                                    []string
		logLevel, logFormat                                        string
		mtu                                                        int
		kubeletPort                                                int32
		gossipAddr, gossipAdv, gossipKeyring, gossipProfile        string
		gossipJoin                                                 []string
		overlayMode, clusterCIDR, serviceCIDR, podCIDR             string
		dnsUpstreams                                               []string
		bootstrapTokenFile                                         string
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a worker node: register it and run its pods on containerd",
		Long: `Run the node agent, barge's kubelet. It joins the cluster with the node's
credential from --certs (node.crt/node.key from 'barge certs node', CN
system:node:NAME in system:nodes, so the API server lets it act only as
that node), registers the Node, renews its Lease, and runs the pods
bound to it on containerd in the namespace --containerd-namespace
(default: the node name), with pod networking from the node's pod CIDR.

The node is a full network node: it joins the servers' gossip pool
(--gossip-join; key from --gossip-keyring, which 'barge certs node'
copies from the cluster's certificates) with its underlay IP, pod CIDR,
overlay mode and VTEP MAC as metadata; carries pod traffic to the other
nodes over --overlay (vxlan, or ipip with a userspace tunnel where the
kernel has no ipip), with peers learnt from gossip alone, and masquerades
pod traffic leaving the cluster; and runs the Service proxy (kube-proxy's
nftables proxier), cluster DNS for its pods (on the pod bridge's gateway,
the cluster DNS address DNATed to it) and NetworkPolicy.

Restarting the agent neither restarts nor orphans running pods: it
re-adopts them from containerd. A stopping agent does not leave the
gossip pool: to the servers a restart looks like a short failure, not a
departure.`,
		Example: `  barge certs node --dir ./certs --name w1 --ip 10.0.0.11
  barge agent --name w1 --certs ./certs/nodes/w1 --servers https://10.0.0.1:6443 --node-ip 10.0.0.11 \
      --gossip-join 10.0.0.1:7946`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(logLevel, logFormat)
			if err != nil {
				return err
			}
			caps, err := parseCapacity(capacity)
			if err != nil {
				return err
			}
			if len(servers) == 0 {
				return fmt.Errorf("--servers: give at least one API server https://IP:PORT")
			}
			for _, s := range servers {
				if err := checkServerURL(s); err != nil {
					return err
				}
			}
			nc := nodeCredentials{dir: certs}
			if _, err := os.Stat(nc.path(pki.CACertFile)); err != nil {
				return fmt.Errorf("--certs %s: %s missing (the cluster CA; 'barge certs node' writes it): %w", certs, pki.CACertFile, err)
			}
			present := func(files ...string) bool {
				for _, f := range files {
					if _, err := os.Stat(nc.path(f)); err != nil {
						return false
					}
				}
				return true
			}
			haveClient, haveServing := present(nodeClientCertFile, nodeClientKeyFile), present(kubeletCertFile, kubeletKeyFile)
			var token string
			if bootstrapTokenFile != "" {
				if token, err = readBootstrapToken(bootstrapTokenFile); err != nil {
					return err
				}
			} else if !haveClient || !haveServing {
				return fmt.Errorf("--certs %s: %s/%s and %s/%s are needed (write them with 'barge certs node', or give --bootstrap-token-file to ask for them)",
					certs, nodeClientCertFile, nodeClientKeyFile, kubeletCertFile, kubeletKeyFile)
			}
			cert := &servingCert{}
			if haveServing {
				if err := loadServing(nc, cert); err != nil {
					return err
				}
			}
			serving, err := kubeletTLS(nc, cert)
			if err != nil {
				return err
			}
			if gossipKeyring == "" {
				gossipKeyring = nc.path(gossip.KeyringFile)
			}
			nw, err := agentNetwork(nodeIP, gossipAddr, gossipAdv, gossipKeyring, gossipProfile, gossipJoin, overlayMode, clusterCIDR, serviceCIDR, dnsUpstreams)
			if err != nil {
				return err
			}
			var podNet netip.Prefix
			if podCIDR != "" {
				if podNet, err = netip.ParsePrefix(podCIDR); err != nil {
					return fmt.Errorf("--pod-cidr %q: want a prefix such as 10.244.7.0/24", podCIDR)
				}
			}
			if stateDir == "" {
				stateDir = filepath.Join("/var/lib/barge/agent", name)
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			// Every API server, failed over per connection: client-go
			// takes one host, which then names only the TLS server (all
			// servers share the cluster's serving certificate).
			dialer, err := agent.NewFailoverDialer(servers)
			if err != nil {
				return fmt.Errorf("--servers: %w", err)
			}
			server := servers[0]
			if !haveClient {
				base := &rest.Config{Host: server, Dial: dialer.DialContext}
				if err := bootstrapClient(ctx, nc, name, token, base, logger); err != nil {
					return err
				}
			}
			cfg := agent.Config{
				NodeName: name,
				Client: &rest.Config{
					Host: server,
					TLSClientConfig: rest.TLSClientConfig{
						CAFile:   nc.path(pki.CACertFile),
						CertFile: nc.path(nodeClientCertFile),
						KeyFile:  nc.path(nodeClientKeyFile),
					},
					QPS: 50, Burst: 100,
					Dial: dialer.DialContext,
				},
				NodeIP:   nodeIP,
				Capacity: caps,
				Version:  "v" + raftstore.Version + "-barge",
				Runtime: runtime.Config{
					Address:   socket,
					Namespace: namespace,
					StateDir:  stateDir,
					HostsDir:  hostsDir,
				},
				KubeletPort: kubeletPort,
				KubeletAPI:  agent.KubeletServer{TLS: serving},
				MTU:         mtu,
				ClusterCIDR: nw.clusterCIDR,
				PodCIDR:     podNet,
				Gossip:      nw.gossip,
				Overlay:     nw.overlay,
				Services:    nw.services,
				Logger:      logger,
			}
			if !haveServing {
				go bootstrapServing(ctx, nc, name, net.ParseIP(nodeIP), cfg.Client, cert, logger)
			}
			logger.Info("starting node agent", "node", name, "servers", servers, "containerd", socket)
			return agent.Run(ctx, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "node name (required)")
	f.StringVar(&certs, "certs", "", "directory with ca.crt, node.crt and node.key from 'barge certs node' (required; with --bootstrap-token-file only ca.crt, and the credential is written there)")
	f.StringVar(&bootstrapTokenFile, "bootstrap-token-file", "", "file holding a bootstrap token ('barge certs token create'): a credential missing from --certs is asked for by CertificateSigningRequest")
	f.StringSliceVar(&servers, "servers", nil, "API servers https://IP:PORT, comma separated; each connection goes to the first that answers, the last good one first (required)")
	f.StringVar(&nodeIP, "node-ip", "", "the node's InternalIP (required)")
	f.StringVar(&socket, "containerd-socket", "/run/containerd/containerd.sock", "containerd's gRPC socket")
	f.StringVar(&namespace, "containerd-namespace", "", "containerd namespace of this node's containers (default: the node name)")
	f.StringVar(&stateDir, "state-dir", "", "agent state: logs, pod volumes, network namespaces, address allocations (default /var/lib/barge/agent/NAME)")
	f.StringVar(&hostsDir, "registry-hosts-dir", "/etc/containerd/certs.d", "containerd registry host configuration (hosts.toml per registry) for pulls")
	f.StringVar(&capacity, "capacity", "", "node capacity, e.g. cpu=4,memory=8Gi,pods=110 (default: the machine's)")
	f.IntVar(&mtu, "mtu", 0, "pod network MTU (default 1500)")
	f.Int32Var(&kubeletPort, "kubelet-port", agent.DefaultKubeletPort, "kubelet API port, served on --node-ip and published in the Node's status")
	f.StringVar(&gossipAddr, "gossip-addr", "", "IP:PORT to gossip on, TCP and UDP (default NODE-IP:7946; port 7946 when only an IP is given)")
	f.StringVar(&gossipAdv, "gossip-advertise", "", "IP other members reach this one at (default the --gossip-addr IP)")
	f.StringSliceVar(&gossipJoin, "gossip-join", nil, "gossip members to join, IP:PORT,... (the servers' --gossip-addr; retried until one answers)")
	f.StringVar(&gossipKeyring, "gossip-keyring", "", "the pool's keyring (default gossip-keyring.json in --certs, which 'barge certs node' copies)")
	f.StringVar(&gossipProfile, "gossip-profile", gossip.ProfileBarge, "failure detector timing: barge, lan or local (see node/gossip); the servers' must match")
	f.StringVar(&overlayMode, "overlay", string(gossip.OverlayVXLAN), "pod overlay between nodes: vxlan, ipip, or none (pods reach only their own node)")
	f.StringVar(&clusterCIDR, "cluster-cidr", overlay.DefaultClusterCIDR.String(), "the cluster's pod network (the servers' --cluster-cidr)")
	f.StringVar(&podCIDR, "pod-cidr", "", "this node's pod range, as the kubelet's --pod-cidr: the Node registers with it and the network starts before any API server answers (default: node IPAM's, remembered in --state-dir for the next start)")
	f.StringVar(&serviceCIDR, "service-cidr", agent.DefaultServiceCIDR.String(), "the Service range (reverse DNS names answered by cluster DNS)")
	f.StringSliceVar(&dnsUpstreams, "dns-upstream", nil, "resolvers for names outside the cluster, IP[:PORT],... (default none: such names get SERVFAIL)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	for _, n := range []string{"name", "certs", "servers", "node-ip"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

// parseCapacity reads cpu=4,memory=8Gi,pods=110.
func parseCapacity(s string) (corev1.ResourceList, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := corev1.ResourceList{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("--capacity %q: want NAME=QUANTITY,... (cpu=4,memory=8Gi,pods=110)", s)
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return nil, fmt.Errorf("--capacity %s: %w", kv, err)
		}
		switch corev1.ResourceName(k) {
		case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourcePods, corev1.ResourceEphemeralStorage:
		default:
			if !strings.Contains(k, "/") && !strings.HasPrefix(k, "hugepages-") {
				return nil, fmt.Errorf("--capacity %s: unknown resource %q (cpu, memory, pods, ephemeral-storage, hugepages-*, or a domain/name extended resource)", kv, k)
			}
		}
		out[corev1.ResourceName(k)] = q
	}
	return out, nil
}
