package lab

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// nftTable is the one nftables table the lab owns in each host namespace;
// Heal deletes it whole.
const nftTable = "inet barge"

// Partition cuts hosts off from the hosts in from (every other host when
// from is empty) by dropping their packets with nftables inside the host
// namespaces, both directions unless oneWay. One-way drops only what from
// sends to hosts (hosts' input), so hosts still talk to from.
//
// Only host addresses are dropped: the root namespace's address (.254),
// from which tests, `barge lab status` and clients connect, keeps reaching
// every host, so a partitioned server stays observable and clients see how
// it behaves when cut off from its peers. Partitions add up until Heal.
func (l *Lab) Partition(hosts, from []string, oneWay bool) error {
	if len(hosts) == 0 {
		return errors.New("lab: partition: no hosts given")
	}
	inHosts := make(map[string]bool)
	for _, n := range hosts {
		if _, err := l.Host(n); err != nil {
			return fmt.Errorf("lab: partition: %w", err)
		}
		inHosts[n] = true
	}
	if len(from) == 0 {
		for _, h := range l.Hosts {
			if !inHosts[h.Name] {
				from = append(from, h.Name)
			}
		}
	}
	for _, n := range from {
		if _, err := l.Host(n); err != nil {
			return fmt.Errorf("lab: partition: %w", err)
		}
		if inHosts[n] {
			return fmt.Errorf("lab: partition: %s is on both sides", n)
		}
	}
	if len(from) == 0 {
		return errors.New("lab: partition: no other hosts to cut off from")
	}
	ctx := context.Background()
	// Both sides get the rules in a two-way partition, so it holds even if
	// one side's table is deleted by hand.
	if err := l.drop(ctx, hosts, from, true, !oneWay); err != nil {
		return err
	}
	if !oneWay {
		if err := l.drop(ctx, from, hosts, true, true); err != nil {
			return err
		}
	}
	l.log.Info("partitioned", "hosts", hosts, "from", from, "oneWay", oneWay)
	return nil
}

// drop installs, in each host of on, rules dropping packets from (input)
// and to (output) the hosts of peers.
func (l *Lab) drop(ctx context.Context, on, peers []string, input, output bool) error {
	var addrs []string
	for _, n := range peers {
		h, _ := l.Host(n)
		addrs = append(addrs, h.Address)
	}
	slices.Sort(addrs)
	set := "{ " + strings.Join(addrs, ", ") + " }"
	var b strings.Builder
	fmt.Fprintf(&b, "add table %s\n", nftTable)
	fmt.Fprintf(&b, "add chain %s input { type filter hook input priority 0; policy accept; }\n", nftTable)
	fmt.Fprintf(&b, "add chain %s output { type filter hook output priority 0; policy accept; }\n", nftTable)
	if input {
		fmt.Fprintf(&b, "add rule %s input ip saddr %s drop\n", nftTable, set)
	}
	if output {
		fmt.Fprintf(&b, "add rule %s output ip daddr %s drop\n", nftTable, set)
	}
	for _, n := range on {
		h, _ := l.Host(n)
		if err := nft(ctx, h.Netns, b.String()); err != nil {
			return fmt.Errorf("lab: partition %s: %w", n, err)
		}
	}
	return nil
}

// Heal removes every partition: the lab's nftables table in every host.
func (l *Lab) Heal() error {
	ctx := context.Background()
	var errs []error
	for _, h := range l.Hosts {
		// Adding first makes the delete succeed whether or not the table
		// exists, in one atomic nft transaction.
		if err := nft(ctx, h.Netns, fmt.Sprintf("add table %s\ndelete table %s\n", nftTable, nftTable)); err != nil {
			errs = append(errs, fmt.Errorf("lab: heal %s: %w", h.Name, err))
		}
	}
	if len(errs) == 0 {
		l.log.Info("healed")
	}
	return errors.Join(errs...)
}
