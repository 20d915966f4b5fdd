package netpol

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// state is a desired (or applied) ruleset: the per-pod chains' rules and
// the dispatch maps (pod IP → chain name).
type state struct {
	chains  map[string][]string
	ingress map[string]string
	egress  map[string]string
}

// cluster is the slice of the API the rules are computed from.
type cluster struct {
	node       string
	pods       []*v1.Pod
	namespaces []*v1.Namespace
	policies   []*networkingv1.NetworkPolicy
}

// podIP is the pod's IPv4 address, if it has one and takes part in
// policy (host-network pods and finished pods do not).
func podIP(p *v1.Pod) (netip.Addr, bool) {
	if p.Spec.HostNetwork || p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed || p.DeletionTimestamp != nil && p.Status.PodIP == "" {
		return netip.Addr{}, false
	}
	for _, s := range append([]string{p.Status.PodIP}, podIPs(p)...) {
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

func podIPs(p *v1.Pod) []string {
	var out []string
	for _, ip := range p.Status.PodIPs {
		out = append(out, ip.IP)
	}
	return out
}

// pod is a pod that takes part in policy, with its address.
type pod struct {
	ip  netip.Addr
	pod *v1.Pod
}

// computer holds one computation's indexes.
type computer struct {
	all      []pod // sorted by address
	nsLabels map[string]labels.Set
}

// compute renders the desired state; problems with single policies (a
// selector that does not parse) are returned beside it, and the rule
// then allows nothing, which is the safe reading of an isolating policy.
func compute(c cluster) (state, []error) {
	st := state{chains: map[string][]string{}, ingress: map[string]string{}, egress: map[string]string{}}
	var errs []error
	cp := &computer{nsLabels: map[string]labels.Set{}}
	for _, ns := range c.namespaces {
		cp.nsLabels[ns.Name] = ns.Labels
	}
	for _, p := range c.pods {
		if ip, ok := podIP(p); ok {
			cp.all = append(cp.all, pod{ip, p})
		}
	}
	// Sorted pods make the rendered rules stable, so an unchanged input
	// gives an unchanged chain and no write.
	sort.Slice(cp.all, func(i, j int) bool { return cp.all[i].ip.Less(cp.all[j].ip) })
	pols := append([]*networkingv1.NetworkPolicy(nil), c.policies...)
	sort.Slice(pols, func(i, j int) bool {
		return pols[i].Namespace+"/"+pols[i].Name < pols[j].Namespace+"/"+pols[j].Name
	})

	for _, local := range cp.all {
		if local.pod.Spec.NodeName != c.node {
			continue
		}
		var ingress, egress []string
		isoIn, isoOut := false, false
		for _, pol := range pols {
			if pol.Namespace != local.pod.Namespace {
				continue
			}
			sel, err := metav1.LabelSelectorAsSelector(&pol.Spec.PodSelector)
			if err != nil {
				errs = append(errs, fmt.Errorf("networkpolicy %s/%s: podSelector: %w", pol.Namespace, pol.Name, err))
				continue
			}
			if !sel.Matches(labels.Set(local.pod.Labels)) {
				continue
			}
			in, out := policyTypes(pol)
			if in {
				isoIn = true
				for _, r := range pol.Spec.Ingress {
					rules, err := cp.rule("saddr", pol, r.From, r.Ports, local.pod)
					if err != nil {
						errs = append(errs, err)
					}
					ingress = append(ingress, rules...)
				}
			}
			if out {
				isoOut = true
				for _, r := range pol.Spec.Egress {
					rules, err := cp.rule("daddr", pol, r.To, r.Ports, nil)
					if err != nil {
						errs = append(errs, err)
					}
					egress = append(egress, rules...)
				}
			}
		}
		ip := local.ip.String()
		if isoIn {
			ch := "ingress-" + ip
			st.chains[ch] = append(dedupe(ingress), deny)
			st.ingress[ip] = ch
		}
		if isoOut {
			ch := "egress-" + ip
			st.chains[ch] = append(dedupe(egress), deny)
			st.egress[ip] = ch
		}
	}
	return st, errs
}

// deny ends every isolated pod's chain: a reject, not a silent drop, so
// a denied connection fails at once (the client sees "host
// unreachable") instead of hanging until its own timeout.
const deny = "reject with icmp type admin-prohibited"

// policyTypes reads spec.policyTypes, defaulted as the API does when it
// is empty: Ingress always, Egress when there are egress rules.
func policyTypes(p *networkingv1.NetworkPolicy) (ingress, egress bool) {
	if len(p.Spec.PolicyTypes) == 0 {
		return true, len(p.Spec.Egress) > 0
	}
	for _, t := range p.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ingress = true
		case networkingv1.PolicyTypeEgress:
			egress = true
		}
	}
	return ingress, egress
}

// selected resolves a peer's selectors to the pods they pick.
func (cp *computer) selected(pol *networkingv1.NetworkPolicy, peer networkingv1.NetworkPolicyPeer) ([]pod, error) {
	podSel := labels.Everything()
	var nsSel labels.Selector
	var err error
	if peer.PodSelector != nil {
		if podSel, err = metav1.LabelSelectorAsSelector(peer.PodSelector); err != nil {
			return nil, fmt.Errorf("networkpolicy %s/%s: peer podSelector: %w", pol.Namespace, pol.Name, err)
		}
	}
	if peer.NamespaceSelector != nil {
		if nsSel, err = metav1.LabelSelectorAsSelector(peer.NamespaceSelector); err != nil {
			return nil, fmt.Errorf("networkpolicy %s/%s: peer namespaceSelector: %w", pol.Namespace, pol.Name, err)
		}
	}
	var out []pod
	for _, p := range cp.all {
		if nsSel == nil {
			if p.pod.Namespace != pol.Namespace {
				continue
			}
		} else if !nsSel.Matches(cp.nsLabels[p.pod.Namespace]) {
			continue
		}
		if podSel.Matches(labels.Set(p.pod.Labels)) {
			out = append(out, p)
		}
	}
	return out, nil
}

// rule renders one ingress or egress rule as nft rules that return
// (allow). dir is "saddr" for ingress (peers are sources) or "daddr" for
// egress. owner is the pod whose named ports the rule's ports name: the
// local pod for ingress; nil for egress, where each destination pod
// resolves them itself.
func (cp *computer) rule(dir string, pol *networkingv1.NetworkPolicy, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort, owner *v1.Pod) ([]string, error) {
	named := false
	for _, p := range ports {
		if p.Port != nil && p.Port.Type == intstr.String {
			named = true
		}
	}
	if owner != nil || !named {
		// One set of ports for every peer.
		pe := portExprs(ports, owner)
		if len(peers) == 0 {
			return cross([]string{""}, pe), nil
		}
		var out []string
		for _, peer := range peers {
			pm, err := cp.peerExpr(dir, pol, peer)
			if err != nil {
				return out, err
			}
			out = append(out, cross(pm, pe)...)
		}
		return out, nil
	}
	// Egress to named ports: each destination pod has its own numbers;
	// address blocks can only match the numeric ones. No peers means
	// every destination, and only pods have named ports.
	if len(peers) == 0 {
		peers = []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}, NamespaceSelector: &metav1.LabelSelector{}}}
	}
	var out []string
	for _, peer := range peers {
		if peer.IPBlock != nil {
			pm, err := cp.peerExpr(dir, pol, peer)
			if err != nil {
				return out, err
			}
			out = append(out, cross(pm, portExprs(ports, nil))...)
			continue
		}
		pods, err := cp.selected(pol, peer)
		if err != nil {
			return out, err
		}
		// Group destinations with the same resolved ports into one rule.
		groups := map[string][]string{}
		var order []string
		for _, p := range pods {
			pe := portExprs(ports, p.pod)
			if len(pe) == 0 {
				continue
			}
			k := strings.Join(pe, "|")
			if _, ok := groups[k]; !ok {
				order = append(order, k)
			}
			groups[k] = append(groups[k], p.ip.String())
		}
		for _, k := range order {
			out = append(out, cross([]string{"ip " + dir + " { " + strings.Join(groups[k], ", ") + " }"}, strings.Split(k, "|"))...)
		}
	}
	return out, nil
}

// peerExpr matches one peer: an address block with its exceptions, or
// the set of selected pods' addresses (none: the peer matches nothing).
func (cp *computer) peerExpr(dir string, pol *networkingv1.NetworkPolicy, peer networkingv1.NetworkPolicyPeer) ([]string, error) {
	if b := peer.IPBlock; b != nil {
		cidr, err := netip.ParsePrefix(b.CIDR)
		if err != nil || !cidr.Addr().Is4() {
			if err == nil {
				return nil, nil // an IPv6 block matches nothing in an IPv4 cluster
			}
			return nil, fmt.Errorf("networkpolicy %s/%s: ipBlock cidr %q: %w", pol.Namespace, pol.Name, b.CIDR, err)
		}
		e := "ip " + dir + " " + cidr.Masked().String()
		var ex []string
		for _, x := range b.Except {
			xp, err := netip.ParsePrefix(x)
			if err != nil {
				return nil, fmt.Errorf("networkpolicy %s/%s: ipBlock except %q: %w", pol.Namespace, pol.Name, x, err)
			}
			if xp.Addr().Is4() {
				ex = append(ex, xp.Masked().String())
			}
		}
		if len(ex) > 0 {
			e += " ip " + dir + " != { " + strings.Join(ex, ", ") + " }"
		}
		return []string{e}, nil
	}
	pods, err := cp.selected(pol, peer)
	if err != nil || len(pods) == 0 {
		return nil, err
	}
	ips := make([]string, len(pods))
	for i, p := range pods {
		ips[i] = p.ip.String()
	}
	return []string{"ip " + dir + " { " + strings.Join(ips, ", ") + " }"}, nil
}

// portExprs renders a rule's ports, grouped by protocol; no ports means
// any port ([""]); ports that resolve to nothing give no expressions,
// so the rule allows nothing.
func portExprs(ports []networkingv1.NetworkPolicyPort, owner *v1.Pod) []string {
	if len(ports) == 0 {
		return []string{""}
	}
	whole := map[string]bool{}
	nums := map[string][]string{}
	var protos []string
	add := func(proto string) {
		if _, ok := nums[proto]; !ok && !whole[proto] {
			protos = append(protos, proto)
		}
	}
	for _, p := range ports {
		proto := "tcp"
		if p.Protocol != nil {
			proto = strings.ToLower(string(*p.Protocol))
		}
		switch {
		case p.Port == nil:
			add(proto)
			whole[proto] = true
		case p.Port.Type == intstr.String:
			if n := namedPort(owner, p.Port.StrVal, proto); n > 0 {
				add(proto)
				nums[proto] = append(nums[proto], fmt.Sprint(n))
			}
		default:
			add(proto)
			if p.EndPort != nil && *p.EndPort > p.Port.IntVal {
				nums[proto] = append(nums[proto], fmt.Sprintf("%d-%d", p.Port.IntVal, *p.EndPort))
			} else {
				nums[proto] = append(nums[proto], fmt.Sprint(p.Port.IntVal))
			}
		}
	}
	var out []string
	for _, proto := range protos {
		if whole[proto] {
			out = append(out, "meta l4proto "+proto)
		} else if len(nums[proto]) > 0 {
			out = append(out, proto+" dport { "+strings.Join(dedupe(nums[proto]), ", ")+" }")
		}
	}
	return out
}

// namedPort finds the pod's container port called name with protocol
// proto; 0 if there is none (or no pod).
func namedPort(p *v1.Pod, name, proto string) int32 {
	if p == nil {
		return 0
	}
	for _, c := range append(append([]v1.Container(nil), p.Spec.InitContainers...), p.Spec.Containers...) {
		for _, cp := range c.Ports {
			pr := cp.Protocol
			if pr == "" {
				pr = v1.ProtocolTCP
			}
			if cp.Name == name && strings.EqualFold(string(pr), proto) {
				return cp.ContainerPort
			}
		}
	}
	return 0
}

// cross joins every peer match with every port match into a rule that
// returns.
func cross(peers, ports []string) []string {
	var out []string
	for _, pm := range peers {
		for _, pe := range ports {
			r := strings.TrimSpace(pm + " " + pe)
			out = append(out, strings.TrimSpace(r+" return"))
		}
	}
	return out
}

func dedupe(rules []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rules {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}
