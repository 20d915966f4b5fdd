package lab_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/utils/ptr"

	"github.com/barge-dev/barge/chaos/lab"
)

// podNetwork checks the agents' network end to end, on a lab with nodes
// n1 and n2: a pod on n1 reaches a pod on n2 by its IP across the
// overlay, and a ClusterIP Service over the n2 pod by its DNS name; a
// NetworkPolicy denying ingress to the n2 pod makes both fail.
func podNetwork(t *testing.T, l *lab.Lab) {
	t.Helper()
	ctx := context.Background()
	cs, err := l.Kube()
	if err != nil {
		t.Fatal(err)
	}
	const ns = "podnet"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	image := l.Registry + "/" + lab.BusyboxImage
	web := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{NodeName: "n2", Containers: []corev1.Container{{
			Name: "httpd", Image: image,
			Command: []string{"sh", "-c", "mkdir -p /www && echo hello from n2 > /www/index.html && exec httpd -f -p 8080 -h /www"},
			Ports:   []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		}}},
	}
	client := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "client", Namespace: ns},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{
			Name: "c", Image: image, Command: []string{"sleep", "3600"},
		}}},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}
	waitFor(t, "pods created", 60*time.Second, func() (bool, string) {
		// The namespace's default ServiceAccount comes shortly after it.
		for _, p := range []*corev1.Pod{web, client} {
			if _, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil && !strings.Contains(err.Error(), "already exists") {
				return false, err.Error()
			}
		}
		return true, ""
	})
	if _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	webIP := waitRunning(t, cs, ns, "web")
	waitRunning(t, cs, ns, "client")

	cfg, err := clientcmd.BuildConfigFromFlags("", l.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	// An HTTP GET from the n1 pod, through the API server's exec
	// subresource and n1's kubelet API. busybox nc, not wget: the static
	// busybox's wget crashes (SIGSEGV) in this image.
	get := func(hostPort string) (string, error) {
		host, port, _ := strings.Cut(hostPort, ":")
		script := fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 %s %s`, host, port)
		req := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name("client").SubResource("exec").
			VersionedParams(&corev1.PodExecOptions{Container: "c", Command: []string{"sh", "-c", script}, Stdout: true, Stderr: true}, scheme.ParameterCodec)
		exec, err := remotecommand.NewSPDYExecutor(cfg, http.MethodPost, req.URL())
		if err != nil {
			return "", err
		}
		var stdout, stderr bytes.Buffer
		ectx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		err = exec.StreamWithContext(ectx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
		if err != nil {
			return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
		}
		return stdout.String(), nil
	}
	byIP := webIP + ":8080"
	byName := "web." + ns + ".svc.cluster.local:80"
	reaches := func(addr string) func() (bool, string) {
		return func() (bool, string) {
			out, err := get(addr)
			if err != nil {
				return false, err.Error()
			}
			return strings.HasSuffix(strings.TrimSpace(out), "\nhello from n2"), "answer " + out
		}
	}
	fails := func(addr string) func() (bool, string) {
		return func() (bool, string) {
			out, err := get(addr)
			if err == nil {
				return false, "answered " + out
			}
			// A failed exec (API, kubelet API) is not the policy's doing.
			if !strings.Contains(err.Error(), "exit code") {
				return false, err.Error()
			}
			return true, ""
		}
	}
	waitFor(t, "n1 pod reaches n2 pod "+byIP+" over the overlay", 60*time.Second, reaches(byIP))
	t.Logf("n1 pod reached the n2 pod at %s", byIP)
	waitFor(t, "n1 pod reaches Service "+byName, 60*time.Second, reaches(byName))
	t.Logf("n1 pod reached Service %s", byName)

	deny := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-web", Namespace: ns},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		},
	}
	if _, err := cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, deny, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Service "+byName+" denied by NetworkPolicy", 60*time.Second, fails(byName))
	waitFor(t, "pod "+byIP+" denied by NetworkPolicy", 60*time.Second, fails(byIP))
	t.Logf("NetworkPolicy %s denies both", deny.Name)

	// The pods go at once, so the rest of the test counts only its own.
	for _, name := range []string{"web", "client"} {
		if err := cs.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "pods deleted", 60*time.Second, func() (bool, string) {
		list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(list.Items) == 0, fmt.Sprintf("%d left", len(list.Items))
	})
}

// waitRunning waits for a pod to run and returns its IP.
func waitRunning(t *testing.T, cs kubernetes.Interface, ns, name string) string {
	t.Helper()
	var ip string
	waitFor(t, "pod "+name+" Running", 90*time.Second, func() (bool, string) {
		p, err := cs.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		ip = p.Status.PodIP
		return p.Status.Phase == corev1.PodRunning && ip != "", fmt.Sprintf("%s on %q: %+v", p.Status.Phase, p.Spec.NodeName, p.Status.ContainerStatuses)
	})
	return ip
}
