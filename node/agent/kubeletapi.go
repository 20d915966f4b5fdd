package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/barge-dev/barge/node/kubeletapi"
)

// KubeletServer is the KubeletAPI of node/kubeletapi: the node's kubelet
// API on its InternalIP and Config.KubeletPort, the port the Node's
// status.daemonEndpoints publishes and kube-apiserver dials for logs,
// exec, attach and port-forward.
type KubeletServer struct {
	// TLS serves the node's kubelet certificate (kubelet.crt from `barge
	// certs node`, with the node's address as a SAN); its ClientCAs are
	// the cluster CA, whose apiserver-kubelet-client certificate
	// kube-apiserver presents. Requests without a certificate may bring
	// a bearer token, checked by TokenReview.
	TLS *tls.Config
	// Addr overrides NodeIP:KubeletPort (host:port).
	Addr string
}

// Serve builds the server on the running agent and serves until ctx ends.
func (k KubeletServer) Serve(ctx context.Context, a *Agent) error {
	if k.TLS == nil {
		return errors.New("agent: kubelet API: a serving TLS configuration is required")
	}
	srv, err := kubeletapi.New(kubeletapi.Config{
		Client:    a.rt.Client(),
		Namespace: a.rt.Namespace(),
		NodeName:  a.cfg.NodeName,
		TLS:       k.TLS,
		// SubjectAccessReview and TokenReview as the node itself: both
		// are in the rules upstream's Node authorizer grants every node.
		Kube:     a.client,
		Attacher: a.rt,
		Pods:     func(context.Context) ([]*corev1.Pod, error) { return a.Pods() },
		Logger:   a.cfg.Logger, // it adds the node itself
	})
	if err != nil {
		return fmt.Errorf("agent: kubelet API: %w", err)
	}
	addr := k.Addr
	if addr == "" {
		addr = net.JoinHostPort(a.cfg.NodeIP, strconv.Itoa(int(a.cfg.KubeletPort)))
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("agent: kubelet API: %w", err)
	}
	return srv.Serve(ctx, ln)
}
