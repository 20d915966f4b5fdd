package dns

import (
	"context"
	"fmt"
	"net/netip"

	"sigs.k8s.io/knftables"
)

// Table is the nftables table (family ip) that redirects the cluster DNS
// Service to this node's server.
const Table = "barge-dns"

// ensureDNAT writes the table in one transaction (created if missing,
// chains flushed and refilled), so a restarted agent leaves one copy and
// there is never a moment without the rules.
func ensureDNAT(ctx context.Context, serviceIP netip.Addr, listen netip.AddrPort) error {
	nft, err := knftables.New(knftables.IPv4Family, Table)
	if err != nil {
		return fmt.Errorf("dns: nftables: %w", err)
	}
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("barge cluster DNS: the kube-dns Service answered on this node")})
	// dstnat-20: before kube-proxy's no-endpoint reject (dstnat-10) and
	// its Service DNAT (dstnat).
	prio := knftables.PtrTo(knftables.DNATPriority + "-20")
	for _, c := range []struct {
		name string
		hook knftables.BaseChainHook
	}{{"prerouting", knftables.PreroutingHook}, {"output", knftables.OutputHook}} {
		tx.Add(&knftables.Chain{Name: c.name, Type: knftables.PtrTo(knftables.NATType), Hook: knftables.PtrTo(c.hook), Priority: prio})
		tx.Flush(&knftables.Chain{Name: c.name})
		for _, proto := range []string{"udp", "tcp"} {
			tx.Add(&knftables.Rule{
				Chain: c.name,
				Rule: knftables.Concat(
					"ip daddr", serviceIP.String(), proto, "dport 53",
					"dnat to", listen.String(),
				),
			})
		}
	}
	if err := nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("dns: write table ip %s: %w", Table, err)
	}
	return nil
}
