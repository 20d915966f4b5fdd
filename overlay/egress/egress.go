package egress

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"sigs.k8s.io/knftables"
)

// DefaultTable is the nftables table (family ip) egress owns.
const DefaultTable = "barge-overlay"

// Config says what to masquerade.
type Config struct {
	// PodCIDR is this node's pod range: the sources masqueraded.
	PodCIDR netip.Prefix
	// ClusterCIDR is the whole pod network: destinations inside it are
	// left alone.
	ClusterCIDR netip.Prefix
	// Table names the nftables table; "" is DefaultTable.
	Table string
}

// Ensure writes the table: created if missing, its chain flushed and
// refilled, in one transaction, so there is never a moment without the
// rule and a rerun (a restarted agent) leaves exactly one copy.
func Ensure(ctx context.Context, cfg Config) error {
	if !cfg.PodCIDR.IsValid() || !cfg.PodCIDR.Addr().Is4() {
		return fmt.Errorf("egress: pod CIDR %v is not an IPv4 prefix", cfg.PodCIDR)
	}
	if !cfg.ClusterCIDR.IsValid() || !cfg.ClusterCIDR.Addr().Is4() {
		return fmt.Errorf("egress: cluster CIDR %v is not an IPv4 prefix", cfg.ClusterCIDR)
	}
	if table(cfg) == "" {
		return errors.New("egress: no table name")
	}
	nft, err := knftables.New(knftables.IPv4Family, table(cfg))
	if err != nil {
		return fmt.Errorf("egress: nftables: %w", err)
	}
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("barge pod egress masquerade")})
	tx.Add(&knftables.Chain{
		Name:     "postrouting",
		Type:     knftables.PtrTo(knftables.NATType),
		Hook:     knftables.PtrTo(knftables.PostroutingHook),
		Priority: knftables.PtrTo(knftables.SNATPriority),
	})
	tx.Flush(&knftables.Chain{Name: "postrouting"})
	pod, cluster := cfg.PodCIDR.Masked().String(), cfg.ClusterCIDR.Masked().String()
	tx.Add(&knftables.Rule{
		Chain: "postrouting",
		Rule: knftables.Concat(
			"ip saddr", pod,
			"ip daddr !=", cluster,
			"ip daddr != 224.0.0.0/4",
			"masquerade fully-random",
		),
		Comment: knftables.PtrTo("pod traffic leaving the pod network"),
	})
	// Traffic from outside the pod network that this node forwards to a
	// pod on another node (a NodePort, the node's own underlay address)
	// takes the tunnel device's address, as flannel does: the peer
	// routes it back through the overlay, and the IPIP tunnel accepts
	// only sources inside the sending node's pod CIDR.
	tx.Add(&knftables.Rule{
		Chain: "postrouting",
		Rule: knftables.Concat(
			"ip saddr !=", cluster,
			"ip daddr", cluster,
			"ip daddr !=", pod,
			"masquerade fully-random",
		),
		Comment: knftables.PtrTo("traffic from outside the pod network to remote pods"),
	})
	if err := nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("egress: write table ip %s: %w", table(cfg), err)
	}
	return nil
}

// Delete removes the table; a missing table is not an error.
func Delete(ctx context.Context, name string) error {
	if name == "" {
		name = DefaultTable
	}
	nft, err := knftables.New(knftables.IPv4Family, name)
	if err != nil {
		return fmt.Errorf("egress: nftables: %w", err)
	}
	tx := nft.NewTransaction()
	// Adding first makes the delete succeed whether or not it exists.
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	if err := nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("egress: delete table ip %s: %w", name, err)
	}
	return nil
}

func table(cfg Config) string {
	if cfg.Table == "" {
		return DefaultTable
	}
	return cfg.Table
}
