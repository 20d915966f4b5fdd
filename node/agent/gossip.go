package agent

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/barge-dev/barge/node/gossip"
)

// Gossip makes the node a member of the cluster's one gossip pool
// (node/gossip), role agent, named as the node: the servers' node health
// controller learns from it within seconds that the agent died, and the
// other agents learn the node's overlay metadata (underlay IP, pod CIDR,
// overlay mode, VTEP MAC) from it, with or without an API server.
//
// The member lives in the agent's own network namespace (memberlist
// dials from whatever thread it runs on), not in Runtime.HostNetns.
type Gossip struct {
	// BindAddr is the IP to listen on, TCP and UDP; default NodeIP.
	BindAddr string
	// Port is the pool port; 0 is gossip.DefaultPort.
	Port int
	// AdvertiseAddr is the IP other members reach this one at; default
	// BindAddr.
	AdvertiseAddr string
	// Join lists members to join (the servers' gossip addresses, IP:PORT
	// or IP); retried in the background until one answers.
	Join []string
	// KeyringFile is the pool's keyring (gossip.KeyringFile, which `barge
	// certs node` copies into the node's directory). Required.
	KeyringFile string
	// Timing of failure detection; zero is gossip.ProfileBarge.
	Timing gossip.Timing
}

func (g *Gossip) complete(nodeIP string) error {
	if g.BindAddr == "" {
		g.BindAddr = nodeIP
	}
	if g.Port == 0 {
		g.Port = gossip.DefaultPort
	}
	if g.KeyringFile == "" {
		return errors.New("agent: gossip: a keyring file is required (gossip is always encrypted)")
	}
	if _, err := netip.ParseAddr(g.BindAddr); err != nil {
		return fmt.Errorf("agent: gossip bind address %q: %w", g.BindAddr, err)
	}
	return nil
}

// startGossip starts the node's member with meta. Stopping it is
// Pool.Shutdown, never Leave: an agent that stops is about to restart
// (or crashed), and a goodbye would tell node health the node left
// (nodehealth's NodeGossipLeft) when its pods run on.
func (a *Agent) startGossip(meta gossip.Meta) (*gossip.Pool, error) {
	g := a.cfg.Gossip
	meta.Role = gossip.RoleAgent
	if meta.Tags == nil {
		meta.Tags = map[string]string{}
	}
	meta.Tags["version"] = a.cfg.Version
	pool, err := gossip.Start(gossip.Config{
		Name:          a.cfg.NodeName,
		Role:          gossip.RoleAgent,
		BindAddr:      g.BindAddr,
		AdvertiseAddr: g.AdvertiseAddr,
		Port:          g.Port,
		KeyringFile:   g.KeyringFile,
		Meta:          meta,
		Join:          g.Join,
		Timing:        g.Timing,
		Logger:        a.log,
	})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return pool, nil
}
