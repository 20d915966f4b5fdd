package svctest

import (
	"context"
	"fmt"
	"net/netip"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// Endpoint is one endpoint of a hand-written EndpointSlice.
type Endpoint struct {
	IP       netip.Addr
	Node     string
	Hostname string
	// NotReady and Terminating set the conditions; Serving follows
	// Ready unless Terminating, then it is true (a draining pod).
	NotReady    bool
	Terminating bool
}

// EndpointSlice builds the slice name of Service svc in namespace ns
// with one port (name, TCP unless proto says otherwise).
func EndpointSlice(ns, svc, name string, port v1.ServicePort, eps ...Endpoint) *discoveryv1.EndpointSlice {
	proto := port.Protocol
	if proto == "" {
		proto = v1.ProtocolTCP
	}
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc, discoveryv1.LabelManagedBy: "svctest"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{{
			Name: ptr.To(port.Name), Protocol: ptr.To(proto), Port: ptr.To(port.TargetPort.IntVal),
		}},
	}
	for _, e := range eps {
		ready := !e.NotReady && !e.Terminating
		ep := discoveryv1.Endpoint{
			Addresses: []string{e.IP.String()},
			Conditions: discoveryv1.EndpointConditions{
				Ready:       ptr.To(ready),
				Serving:     ptr.To(ready || e.Terminating),
				Terminating: ptr.To(e.Terminating),
			},
		}
		if e.Node != "" {
			ep.NodeName = ptr.To(e.Node)
		}
		if e.Hostname != "" {
			ep.Hostname = ptr.To(e.Hostname)
		}
		s.Endpoints = append(s.Endpoints, ep)
	}
	return s
}

// Apply creates or replaces the slice.
func Apply(ctx context.Context, c kubernetes.Interface, s *discoveryv1.EndpointSlice) error {
	api := c.DiscoveryV1().EndpointSlices(s.Namespace)
	old, err := api.Get(ctx, s.Name, metav1.GetOptions{})
	if err != nil {
		if _, err := api.Create(ctx, s, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create EndpointSlice %s/%s: %w", s.Namespace, s.Name, err)
		}
		return nil
	}
	s.ResourceVersion = old.ResourceVersion
	if _, err := api.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update EndpointSlice %s/%s: %w", s.Namespace, s.Name, err)
	}
	return nil
}

// RunningPod creates a Pod bound to node with IP ip, Running and Ready,
// the way the agent's status would leave it.
func RunningPod(ctx context.Context, c kubernetes.Interface, p *v1.Pod, node string, ip netip.Addr) (*v1.Pod, error) {
	p = p.DeepCopy()
	p.Spec.NodeName = node
	if len(p.Spec.Containers) == 0 {
		p.Spec.Containers = []v1.Container{{Name: "c", Image: "busybox"}}
	}
	created, err := c.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	created.Status = v1.PodStatus{
		Phase:  v1.PodRunning,
		PodIP:  ip.String(),
		PodIPs: []v1.PodIP{{IP: ip.String()}},
		HostIP: "",
		Conditions: []v1.PodCondition{
			{Type: v1.PodReady, Status: v1.ConditionTrue},
			{Type: v1.ContainersReady, Status: v1.ConditionTrue},
		},
	}
	got, err := c.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s status: %w", p.Namespace, p.Name, err)
	}
	return got, nil
}
