package kubeletapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/containerd/containerd"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// DefaultPort is the kubelet API's port, which kube-apiserver dials when
// a Node's status.daemonEndpoints.kubeletEndpoint.port is not set.
const DefaultPort = 10250

// Attacher connects to the main process of a running container, whose
// IO the node runtime owns. It returns when the streams end or ctx is
// done; stdin, stdout and stderr are nil when not requested (stderr is
// nil with a TTY).
type Attacher interface {
	Attach(ctx context.Context, containerID string, stdin io.Reader, stdout, stderr io.Writer, tty bool, resize <-chan remotecommand.TerminalSize) error
}

// Config is what the server needs of the node.
type Config struct {
	// Client is the node's containerd; Namespace its containerd namespace
	// (the node name by default).
	Client    *containerd.Client
	Namespace string
	// NodeName is the Node object this server is the kubelet of: the
	// name in every SubjectAccessReview.
	NodeName string
	// TLS is the serving configuration: the node's serving certificate
	// (from the cluster CA, with the node's addresses as SANs) and, in
	// ClientCAs, the CA whose client certificates authenticate.
	TLS *tls.Config
	// Kube is a client of the API server, for SubjectAccessReview and
	// TokenReview.
	Kube kubernetes.Interface
	// Attacher serves /attach; without one attach answers 501.
	Attacher Attacher
	// Pods lists the pods bound to this node as the agent knows them; it
	// serves /pods and checks that a pod named in a request exists.
	Pods func(ctx context.Context) ([]*corev1.Pod, error)
	// Logger defaults to slog.Default().
	Logger *slog.Logger

	// StreamIdleTimeout ends exec, attach and port-forward sessions with
	// no traffic (default 4 h, the kubelet's); StreamCreationTimeout
	// bounds the client's opening of its streams (default 30 s).
	StreamIdleTimeout     time.Duration
	StreamCreationTimeout time.Duration

	// Authenticator and Authorizer replace the delegating ones built from
	// Kube and TLS.ClientCAs (for embedding in another server).
	Authenticator authenticator.Request
	Authorizer    authorizer.Authorizer
}

// Server is the kubelet API of one node.
type Server struct {
	cfg     Config
	log     *slog.Logger
	authn   authenticator.Request
	authz   authorizer.Authorizer
	tls     *tls.Config
	handler http.Handler
	started time.Time

	cpuMu   sync.Mutex
	cpuPrev map[string]cpuSample
}

// New checks cfg and builds the server.
func New(cfg Config) (*Server, error) {
	if cfg.Client == nil {
		return nil, errors.New("kubeletapi: Config.Client (containerd) is required")
	}
	if cfg.NodeName == "" {
		return nil, errors.New("kubeletapi: Config.NodeName is required")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = cfg.NodeName
	}
	if cfg.TLS == nil || (len(cfg.TLS.Certificates) == 0 && cfg.TLS.GetCertificate == nil) {
		return nil, errors.New("kubeletapi: Config.TLS needs a serving certificate")
	}
	if cfg.StreamIdleTimeout <= 0 {
		cfg.StreamIdleTimeout = 4 * time.Hour
	}
	if cfg.StreamCreationTimeout <= 0 {
		cfg.StreamCreationTimeout = remotecommand.DefaultStreamCreationTimeout
	}
	s := &Server{cfg: cfg, log: cfg.Logger, started: time.Now()}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "kubeletapi", "node", cfg.NodeName)
	s.tls = cfg.TLS.Clone()
	// A client certificate is asked for and, when given, must chain to
	// the CA; a request without one can still bring a bearer token, and
	// one with neither is refused by authentication.
	if s.tls.ClientAuth == tls.NoClientCert {
		s.tls.ClientAuth = tls.VerifyClientCertIfGiven
	}
	if s.tls.MinVersion == 0 {
		s.tls.MinVersion = tls.VersionTLS12
	}
	// SPDY upgrades need HTTP/1.1.
	s.tls.NextProtos = []string{"http/1.1"}
	var err error
	if s.authn, s.authz, err = s.buildAuth(); err != nil {
		return nil, err
	}
	s.handler = s.routes()
	return s, nil
}

// Handler is the server's HTTP handler with authentication and
// authorization in front, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves TLS on ln until ctx is done, then closes the listener and
// ends open connections (streams included).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		TLSConfig:         s.tls,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(tls.NewListener(ln, s.tls)) }()
	s.log.Info("kubelet API serving", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("kubeletapi: serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	// Streams are hijacked connections that Shutdown does not wait for;
	// Close ends them too.
	cerr := hs.Close()
	<-errc
	if cerr != nil {
		return fmt.Errorf("kubeletapi: close: %w", cerr)
	}
	return nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /healthz/{check...}", s.healthz)
	mux.HandleFunc("GET /pods", s.pods)
	mux.HandleFunc("GET /pods/", s.pods)
	mux.HandleFunc("GET /runningpods/", s.runningPods)
	mux.HandleFunc("GET /stats/summary", s.statsSummary)
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", s.containerLogs)
	for _, p := range []string{"/exec/{namespace}/{pod}/{container}", "/exec/{namespace}/{pod}/{uid}/{container}"} {
		mux.HandleFunc("GET "+p, s.exec)
		mux.HandleFunc("POST "+p, s.exec)
	}
	for _, p := range []string{"/attach/{namespace}/{pod}/{container}", "/attach/{namespace}/{pod}/{uid}/{container}"} {
		mux.HandleFunc("GET "+p, s.attach)
		mux.HandleFunc("POST "+p, s.attach)
	}
	for _, p := range []string{"/portForward/{namespace}/{pod}", "/portForward/{namespace}/{pod}/{uid}"} {
		mux.HandleFunc("GET "+p, s.portForward)
		mux.HandleFunc("POST "+p, s.portForward)
	}
	return s.withAuth(mux)
}

// httpError answers err with the status its kind calls for.
func (s *Server) httpError(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, errNotFound):
		code = http.StatusNotFound
	case errors.Is(err, errBadRequest):
		code = http.StatusBadRequest
	}
	if code == http.StatusInternalServerError {
		s.log.Warn("request failed", "path", r.URL.Path, "err", err)
	}
	http.Error(w, err.Error(), code)
}

// errBadRequest marks malformed requests (400).
var errBadRequest = errors.New("bad request")

func badRequest(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, a...))
}

// findPod resolves a pod named in a request through Config.Pods, so a
// request for a pod the node does not run gets 404 before containerd is
// asked; it returns the pod's UID ("" when Pods is not set).
func (s *Server) findPod(ctx context.Context, namespace, name, uid string) (*corev1.Pod, error) {
	if s.cfg.Pods == nil {
		return nil, nil
	}
	pods, err := s.cfg.Pods(ctx)
	if err != nil {
		return nil, fmt.Errorf("list pods of node %s: %w", s.cfg.NodeName, err)
	}
	for _, p := range pods {
		if p.Namespace == namespace && p.Name == name && (uid == "" || string(p.UID) == uid) {
			return p, nil
		}
	}
	return nil, fmt.Errorf("pod %s/%s on node %s: %w", namespace, name, s.cfg.NodeName, errNotFound)
}

// specHasContainer reports whether the pod's spec names container (when
// the pod is known).
func specHasContainer(pod *corev1.Pod, name string) bool {
	if pod == nil {
		return true
	}
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for _, c := range list {
			if c.Name == name {
				return true
			}
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

// target resolves {namespace}/{pod}[/{uid}]/{container} of a request to
// the containerd container of the container's latest run.
func (s *Server) target(r *http.Request, previous bool) (ctrInfo, error) {
	ns, name, uid, cname := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("uid"), r.PathValue("container")
	pod, err := s.findPod(r.Context(), ns, name, uid)
	if err != nil {
		return ctrInfo{}, err
	}
	if !specHasContainer(pod, cname) {
		return ctrInfo{}, fmt.Errorf("container %q in pod %s/%s: %w", cname, ns, name, errNotFound)
	}
	if pod != nil && uid == "" {
		uid = string(pod.UID)
	}
	all, err := s.podContainers(r.Context(), ns, name, uid)
	if err != nil {
		return ctrInfo{}, err
	}
	c, err := pickContainer(all, cname, uid, previous)
	if err != nil {
		return ctrInfo{}, fmt.Errorf("pod %s/%s: %w", ns, name, err)
	}
	return c, nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if ok, err := s.cfg.Client.IsServing(ctx); err != nil || !ok {
		http.Error(w, fmt.Sprintf("containerd not serving: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok")
}
