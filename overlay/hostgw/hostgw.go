package hostgw

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/barge-dev/barge/overlay"
)

// Protocol is the route protocol (rtnetlink's rtm_protocol) of the
// routes hostgw makes: what tells them apart from everyone else's.
const Protocol netlink.RouteProtocol = 98

// Set makes this namespace's hostgw routes exactly one per peer with a
// pod CIDR: stale ones go, changed ones are replaced. A peer whose
// underlay address has no route here is reported and left out; the
// others are still programmed.
func Set(peers []overlay.Peer, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	type want struct {
		gw   netip.Addr
		link int
	}
	desired := map[netip.Prefix]want{}
	var errs []error
	for _, p := range peers {
		if !p.PodCIDR.IsValid() || !p.UnderlayIP.Is4() {
			continue
		}
		rs, err := netlink.RouteGet(p.UnderlayIP.AsSlice())
		if err != nil || len(rs) == 0 {
			errs = append(errs, fmt.Errorf("hostgw: peer %s: no route to its underlay address %v: %w", p.Name, p.UnderlayIP, err))
			continue
		}
		desired[p.PodCIDR.Masked()] = want{gw: p.UnderlayIP, link: rs[0].LinkIndex}
	}
	have, err := netlink.RouteListFiltered(unix.AF_INET, &netlink.Route{Protocol: Protocol}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return fmt.Errorf("hostgw: list routes: %w", err)
	}
	for _, r := range have {
		dst := overlay.IPNetPrefix(r.Dst)
		gw, _ := netip.AddrFromSlice(r.Gw)
		if w, ok := desired[dst]; ok && w.gw == gw.Unmap() && w.link == r.LinkIndex {
			delete(desired, dst)
			continue
		}
		if _, ok := desired[dst]; ok {
			continue // replaced below
		}
		log.Info("removing pod route", "dst", dst, "via", gw)
		if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("hostgw: remove route %v: %w", dst, err))
		}
	}
	for dst, w := range desired {
		err := netlink.RouteReplace(&netlink.Route{
			LinkIndex: w.link, Dst: overlay.PrefixIPNet(dst), Gw: w.gw.AsSlice(),
			Flags: int(netlink.FLAG_ONLINK), Scope: netlink.SCOPE_UNIVERSE, Protocol: Protocol,
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("hostgw: route %v via %v: %w", dst, w.gw, err))
			continue
		}
		log.Info("pod route", "dst", dst, "via", w.gw)
	}
	return errors.Join(errs...)
}
