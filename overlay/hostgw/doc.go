// Package hostgw routes pod CIDRs to their nodes' underlay addresses, as
// flannel's host-gw backend does, for a host that needs to reach pods
// without being part of the pod network: a barge server, whose API
// server proxies to pods (pods/proxy, services/proxy), calls admission
// and conversion webhooks served by pods, and reaches aggregated API
// servers. Each route is `POD-CIDR via UNDERLAY-IP onlink` on the
// interface that reaches the underlay address, tagged with barge's own
// route protocol so a sync replaces exactly the routes it made. It works
// where the host shares a link with the nodes (the lab, a flat network);
// replies come back directly, since a node forwards traffic it did not
// originate without translating it.
//
// hostgw imports overlay (the Peer type), netlink and the standard
// library.
package hostgw
