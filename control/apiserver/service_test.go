package apiserver_test

import (
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/barge-dev/barge/control/apitest"
)

// testServiceAllocation checks cluster IP and node port allocation:
// unique values from 10.96.0.0/16 and 30000-32767 even under concurrent
// creates, requested values honoured or refused with a field error when
// taken, and values freed when their service goes.
func testServiceAllocation(t *testing.T, c *apitest.Cluster) {
	cs := c.Client(0)
	ctx := c.Ctx()
	const ns = "services"
	mkNamespace(t, ctx, cs, ns)
	svcs := cs.CoreV1().Services(ns)
	serviceCIDR := netip.MustParsePrefix("10.96.0.0/16")

	// Concurrent creates: 12 ClusterIP services and 4 NodePort services
	// with two ports each.
	const clusterIPs, nodePorts = 12, 4
	var (
		mu      sync.Mutex
		created []*corev1.Service
		wg      sync.WaitGroup
		errs    = make(chan error, clusterIPs+nodePorts)
	)
	for i := range clusterIPs + nodePorts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := webService(fmt.Sprintf("svc-%02d", i))
			if i >= clusterIPs {
				s.Spec.Type = corev1.ServiceTypeNodePort
				s.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "https", Port: 443}}
			}
			out, err := svcs.Create(ctx, s, metav1.CreateOptions{})
			if err != nil {
				errs <- fmt.Errorf("create %s: %w", s.Name, err)
				return
			}
			mu.Lock()
			created = append(created, out)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ips := map[string]string{}
	ports := map[int32]string{}
	// default/kubernetes holds the first address of the range.
	kube, err := cs.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("default/kubernetes: %v", err)
	}
	ips[kube.Spec.ClusterIP] = "default/kubernetes"
	var firstIP, firstPortSvc *corev1.Service
	for _, s := range created {
		ip, err := netip.ParseAddr(s.Spec.ClusterIP)
		switch {
		case err != nil || !serviceCIDR.Contains(ip):
			t.Errorf("%s: cluster IP %q, want one in %s", s.Name, s.Spec.ClusterIP, serviceCIDR)
		case ip == serviceCIDR.Addr():
			t.Errorf("%s: got the network address %s", s.Name, ip)
		case len(s.Spec.ClusterIPs) != 1 || s.Spec.ClusterIPs[0] != s.Spec.ClusterIP:
			t.Errorf("%s: clusterIPs %v, want [%s]", s.Name, s.Spec.ClusterIPs, s.Spec.ClusterIP)
		}
		if other, dup := ips[s.Spec.ClusterIP]; dup {
			t.Errorf("%s and %s share cluster IP %s", s.Name, other, s.Spec.ClusterIP)
		}
		ips[s.Spec.ClusterIP] = s.Name
		if s.Name == "svc-00" {
			firstIP = s
		}
		for _, p := range s.Spec.Ports {
			if s.Spec.Type != corev1.ServiceTypeNodePort {
				if p.NodePort != 0 {
					t.Errorf("%s: ClusterIP service got node port %d", s.Name, p.NodePort)
				}
				continue
			}
			if p.NodePort < 30000 || p.NodePort > 32767 {
				t.Errorf("%s/%s: node port %d, want one in 30000-32767", s.Name, p.Name, p.NodePort)
			}
			if other, dup := ports[p.NodePort]; dup {
				t.Errorf("%s and %s share node port %d", s.Name, other, p.NodePort)
			}
			ports[p.NodePort] = s.Name + "/" + p.Name
			if s.Name == fmt.Sprintf("svc-%02d", clusterIPs) {
				firstPortSvc = s
			}
		}
	}
	if firstIP == nil || firstPortSvc == nil {
		t.Fatal("services missing")
	}
	takenIP := firstIP.Spec.ClusterIP
	takenPort := firstPortSvc.Spec.Ports[0].NodePort

	t.Run("requested cluster IP", func(t *testing.T) {
		all, err := cs.CoreV1().Services("").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		inUse := map[string]bool{}
		for _, s := range all.Items {
			inUse[s.Spec.ClusterIP] = true
		}
		want := "10.96.200.7"
		for i := 8; inUse[want]; i++ {
			want = "10.96.200." + strconv.Itoa(i)
		}
		s := webService("requested-ip")
		s.Spec.ClusterIP = want
		out, err := svcs.Create(ctx, s, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if out.Spec.ClusterIP != want {
			t.Errorf("cluster IP %s, want the requested %s", out.Spec.ClusterIP, want)
		}
	})

	t.Run("requested cluster IP that is taken", func(t *testing.T) {
		s := webService("dup-ip")
		s.Spec.ClusterIP = takenIP
		_, err := svcs.Create(ctx, s, metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) {
			t.Fatalf("got %v, want Invalid", err)
		}
		// Kubernetes: spec.clusterIPs: Invalid value: []string{"…"}:
		// failed to allocate IP …: provided IP is already allocated.
		if !hasFieldCause(err, "spec.clusterIPs", "provided IP is already allocated") {
			t.Errorf("error %q lacks Kubernetes' field error on spec.clusterIPs (\"provided IP is already allocated\")", err)
		}
	})

	t.Run("requested cluster IP outside the range", func(t *testing.T) {
		s := webService("outside")
		s.Spec.ClusterIP = "192.168.7.7"
		if _, err := svcs.Create(ctx, s, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
			t.Fatalf("got %v, want Invalid", err)
		}
	})

	t.Run("requested node port that is taken", func(t *testing.T) {
		s := webService("dup-port")
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = takenPort
		_, err := svcs.Create(ctx, s, metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) {
			t.Fatalf("got %v, want Invalid", err)
		}
		if !hasFieldCause(err, "spec.ports[0].nodePort", "provided port is already allocated") {
			t.Errorf("error %q lacks the field error on spec.ports[0].nodePort", err)
		}
	})

	t.Run("headless and ExternalName get no cluster IP", func(t *testing.T) {
		h := webService("headless")
		h.Spec.ClusterIP = corev1.ClusterIPNone
		out, err := svcs.Create(ctx, h, metav1.CreateOptions{})
		if err != nil || out.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("headless: %v %v, want clusterIP None", out.Spec.ClusterIP, err)
		}
		e := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "external"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"}}
		out, err = svcs.Create(ctx, e, metav1.CreateOptions{})
		if err != nil || out.Spec.ClusterIP != "" {
			t.Errorf("ExternalName: %q %v, want no cluster IP", out.Spec.ClusterIP, err)
		}
	})

	t.Run("update keeps the allocation", func(t *testing.T) {
		s, err := svcs.Get(ctx, firstPortSvc.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Left out, as a re-applied manifest leaves them out.
		s.Spec.ClusterIP, s.Spec.ClusterIPs = "", nil
		for i := range s.Spec.Ports {
			s.Spec.Ports[i].NodePort = 0
		}
		s.Spec.Selector = map[string]string{"app": "other"}
		out, err := svcs.Update(ctx, s, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("update: %v", err)
		}
		if out.Spec.ClusterIP != firstPortSvc.Spec.ClusterIP {
			t.Errorf("cluster IP %s after update, was %s", out.Spec.ClusterIP, firstPortSvc.Spec.ClusterIP)
		}
		for i, p := range out.Spec.Ports {
			if p.NodePort != firstPortSvc.Spec.Ports[i].NodePort {
				t.Errorf("port %s: node port %d after update, was %d", p.Name, p.NodePort, firstPortSvc.Spec.Ports[i].NodePort)
			}
		}
		// Changing an allocated cluster IP is refused.
		out.Spec.ClusterIP = "10.96.201.1"
		out.Spec.ClusterIPs = []string{"10.96.201.1"}
		if _, err := svcs.Update(ctx, out, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
			t.Errorf("changing clusterIP: got %v, want Invalid", err)
		}
	})

	t.Run("delete frees the cluster IP and node ports", func(t *testing.T) {
		if err := svcs.Delete(ctx, firstIP.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := svcs.Delete(ctx, firstPortSvc.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		s := webService("reuse-ip")
		s.Spec.ClusterIP = takenIP
		out, err := svcs.Create(ctx, s, metav1.CreateOptions{})
		if err != nil || out.Spec.ClusterIP != takenIP {
			t.Fatalf("create with the freed IP %s: %v", takenIP, err)
		}
		p := webService("reuse-port")
		p.Spec.Type = corev1.ServiceTypeNodePort
		p.Spec.Ports[0].NodePort = takenPort
		out, err = svcs.Create(ctx, p, metav1.CreateOptions{})
		if err != nil || out.Spec.Ports[0].NodePort != takenPort {
			t.Fatalf("create with the freed node port %d: %v", takenPort, err)
		}
		// The freed cluster IP of the NodePort service is requestable too.
		q := webService("reuse-ip-2")
		q.Spec.ClusterIP = firstPortSvc.Spec.ClusterIP
		if _, err := svcs.Create(ctx, q, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create with the freed IP %s: %v", firstPortSvc.Spec.ClusterIP, err)
		}
	})

	t.Run("type change to ClusterIP drops and frees node ports", func(t *testing.T) {
		s, err := svcs.Get(ctx, "reuse-port", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		port := s.Spec.Ports[0].NodePort
		// Only the type changes, as `kubectl patch -p
		// '{"spec":{"type":"ClusterIP"}}'` sends it: Kubernetes drops
		// the node ports and externalTrafficPolicy the client left as
		// they were (dropTypeDependentFields).
		s.Spec.Type = corev1.ServiceTypeClusterIP
		if s, err = svcs.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("update: %v", err)
		}
		if s.Spec.Ports[0].NodePort != 0 || s.Spec.ExternalTrafficPolicy != "" {
			t.Errorf("ClusterIP service kept node port %d / externalTrafficPolicy %q", s.Spec.Ports[0].NodePort, s.Spec.ExternalTrafficPolicy)
		}
		r := webService("reuse-port-2")
		r.Spec.Type = corev1.ServiceTypeNodePort
		r.Spec.Ports[0].NodePort = port
		if _, err := svcs.Create(ctx, r, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create with node port %d given back by the type change: %v", port, err)
		}
	})
}
