package lab

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/barge-dev/barge/node/gossip"
	"github.com/barge-dev/barge/raftstore/pki"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Raft roles reported by Status.
const (
	RaftLeader      = "leader"
	RaftFollower    = "follower"
	RaftNoLeader    = "no-leader" // answering, but knows of no leader
	RaftUnreachable = "unreachable"
)

// statusTimeout bounds one Status call: a paused or partitioned server
// must not stall a report about the others.
const statusTimeout = time.Second

// HostStatus is one line of Status.
type HostStatus struct {
	Name    string `json:"name"`
	Role    string `json:"role"`
	Address string `json:"address"`
	// State is running, paused or stopped: of the server, agent,
	// registry or containerd process. A node without an agent (a lab
	// without containerd) is running while its namespace exists.
	State string `json:"state"`
	PID   int    `json:"pid,omitempty"`
	// Raft is the server's own view (leader, follower, no-leader,
	// unreachable); empty for nodes.
	Raft string `json:"raft,omitempty"`
	// Term is the Raft term the server reported, 0 if unreachable.
	Term uint64 `json:"term,omitempty"`
	// Ready is a node's Ready condition (True, False, Unknown, or
	// unregistered), empty when the API did not answer.
	Ready string `json:"ready,omitempty"`
	// Pods counts the node's pods that have not finished, nil when the
	// API did not answer.
	Pods *int `json:"pods,omitempty"`
	// Gossip is the host's member state in the gossip pool as a server
	// sees it (alive, suspect, dead, left; absent when the server knows
	// no such member), empty when no server answered.
	Gossip string `json:"gossip,omitempty"`
}

// hostStatus reports every host's process, and each server's Raft status
// asked over the client port from the root namespace.
func (l *Lab) hostStatus(ctx context.Context) ([]HostStatus, error) {
	tlsCfg, err := pki.ClientTLS(l.Certs)
	if err != nil {
		return nil, fmt.Errorf("lab: status: %w", err)
	}
	nss, err := labNamespaces(ctx, l.ID)
	if err != nil {
		return nil, err
	}
	out := make([]HostStatus, len(l.Hosts))
	var wg sync.WaitGroup
	for i, h := range l.Hosts {
		out[i] = HostStatus{Name: h.Name, Role: h.Role, Address: h.Address, State: StateStopped}
		if h.Role == RoleNode && l.Containerd == nil {
			for _, ns := range nss {
				if ns == h.Netns {
					out[i].State = StateRunning
				}
			}
			continue
		}
		out[i].State = stateOf(h.PID, h.DataDir)
		if out[i].State != StateStopped {
			out[i].PID = h.PID
		}
		if h.Role == RoleRegistry {
			out[i].Address = l.Registry
		}
		if h.Role != RoleServer {
			continue
		}
		out[i].Raft = RaftUnreachable
		if out[i].State != StateRunning {
			continue
		}
		// Each client gets its own TLS config: grpc adjusts the one it is
		// handed.
		wg.Go(func() {
			role, term, err := raftStatus(ctx, tlsCfg.Clone(), h.ClientAddr)
			if err != nil {
				l.log.Debug("status", "host", h.Name, "err", err)
				return
			}
			out[i].Raft, out[i].Term = role, term
		})
	}
	wg.Wait()
	return out, nil
}

// Status reports every host, asking each server for its Raft status over
// the client port from the root namespace and the API for the nodes'
// readiness and pods, and the shared containerd.
func (l *Lab) Status(ctx context.Context) ([]HostStatus, error) {
	out, err := l.hostStatus(ctx)
	if err != nil {
		return nil, err
	}
	l.nodeStatus(ctx, out)
	l.gossipStatus(ctx, out)
	if c := l.Containerd; c != nil {
		st := HostStatus{Name: ContainerdName, Role: ContainerdName, Address: c.Socket, State: stateOf(c.PID, c.Dir)}
		if st.State != StateStopped {
			st.PID = c.PID
		}
		out = append(out, st)
	}
	return out, nil
}

// Leader returns the server that leads. A server cut off from the others
// may still believe it leads for a moment after the rest elected a new
// leader; the claim with the highest term is the current one.
func (l *Lab) Leader(ctx context.Context) (string, error) {
	st, err := l.hostStatus(ctx)
	if err != nil {
		return "", err
	}
	var best string
	var term uint64
	for _, s := range st {
		if s.Raft == RaftLeader && (best == "" || s.Term > term) {
			best, term = s.Name, s.Term
		}
	}
	if best == "" {
		return "", errors.New("lab: no server reports itself leader")
	}
	return best, nil
}

// waitLeader polls Leader until one is elected or ctx ends.
func (l *Lab) waitLeader(ctx context.Context) (string, error) {
	for {
		leader, err := l.Leader(ctx)
		if err == nil {
			return leader, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// gossipStatus fills the Gossip column from the first running server
// that answers `barge gossip members`' call.
func (l *Lab) gossipStatus(ctx context.Context, out []HostStatus) {
	tlsCfg, err := pki.ClientTLS(l.Certs)
	if err != nil {
		return
	}
	for i, h := range l.Hosts {
		if h.Role != RoleServer || h.GossipAddr == "" || out[i].State != StateRunning {
			continue
		}
		members, err := gossipMembers(ctx, tlsCfg.Clone(), h.ClientAddr)
		if err != nil {
			l.log.Debug("gossip status", "host", h.Name, "err", err)
			continue
		}
		state := map[string]string{}
		for _, m := range members {
			state[m.Name] = string(m.State)
		}
		for j := range out {
			if out[j].Role != RoleServer && out[j].Role != RoleNode {
				continue
			}
			if st, ok := state[out[j].Name]; ok {
				out[j].Gossip = st
			} else {
				out[j].Gossip = "absent"
			}
		}
		return
	}
}

func gossipMembers(ctx context.Context, tlsCfg *tls.Config, addr string) ([]gossip.MemberInfo, error) {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{"https://" + addr},
		TLS:         tlsCfg,
		DialTimeout: statusTimeout,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", addr, err)
	}
	defer cli.Close()
	gctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	members, err := gossip.RemoteMembers(gctx, cli.ActiveConnection())
	if err != nil {
		return nil, fmt.Errorf("gossip members of %s: %w", addr, err)
	}
	return members, nil
}

func raftStatus(ctx context.Context, tlsCfg *tls.Config, addr string) (string, uint64, error) {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{"https://" + addr},
		TLS:         tlsCfg,
		DialTimeout: statusTimeout,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return "", 0, fmt.Errorf("client for %s: %w", addr, err)
	}
	defer cli.Close()
	sctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	resp, err := cli.Status(sctx, "https://"+addr)
	if err != nil {
		return "", 0, fmt.Errorf("status of %s: %w", addr, err)
	}
	switch {
	case resp.Leader == 0:
		return RaftNoLeader, resp.RaftTerm, nil
	case resp.Header != nil && resp.Leader == resp.Header.MemberId:
		return RaftLeader, resp.RaftTerm, nil
	default:
		return RaftFollower, resp.RaftTerm, nil
	}
}
