package kubeletapi

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
)

// buildAuth makes the kubelet's delegating authentication (client
// certificates of the CA in TLS.ClientCAs, tokens by TokenReview, no
// anonymous) and authorization (SubjectAccessReview), as the kubelet
// does with --anonymous-auth=false --authorization-mode=Webhook.
func (s *Server) buildAuth() (authenticator.Request, authorizer.Authorizer, error) {
	authn, authz := s.cfg.Authenticator, s.cfg.Authorizer
	backoff := &wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}
	if authn == nil {
		if s.tls.ClientCAs == nil && s.cfg.Kube == nil {
			return nil, nil, errors.New("kubeletapi: no way to authenticate: set TLS.ClientCAs or Kube")
		}
		dc := authenticatorfactory.DelegatingAuthenticatorConfig{
			WebhookRetryBackoff:      backoff,
			CacheTTL:                 2 * time.Minute,
			TokenAccessReviewTimeout: 10 * time.Second,
		}
		if s.tls.ClientCAs != nil {
			dc.ClientCertificateCAContentProvider = poolCA{s.tls.ClientCAs}
		}
		if s.cfg.Kube != nil {
			dc.TokenAccessReviewClient = s.cfg.Kube.AuthenticationV1()
		}
		a, _, err := dc.New()
		if err != nil {
			return nil, nil, fmt.Errorf("kubeletapi: authentication: %w", err)
		}
		authn = a
	}
	if authz == nil {
		if s.cfg.Kube == nil {
			return nil, nil, errors.New("kubeletapi: Config.Kube is required for SubjectAccessReview")
		}
		a, err := authorizerfactory.DelegatingAuthorizerConfig{
			SubjectAccessReviewClient: s.cfg.Kube.AuthorizationV1(),
			// The kubelet's defaults (5 min allowed, 30 s denied).
			AllowCacheTTL:       5 * time.Minute,
			DenyCacheTTL:        30 * time.Second,
			WebhookRetryBackoff: backoff,
		}.New()
		if err != nil {
			return nil, nil, fmt.Errorf("kubeletapi: authorization: %w", err)
		}
		authz = a
	}
	return authn, authz, nil
}

// poolCA gives the x509 authenticator the CA pool of the TLS
// configuration. The pool never changes, so there is nothing to notify.
type poolCA struct{ pool *x509.CertPool }

var _ dynamiccertificates.CAContentProvider = poolCA{}

func (poolCA) Name() string                             { return "kubelet-client-ca" }
func (poolCA) CurrentCABundleContent() []byte           { return nil }
func (poolCA) AddListener(dynamiccertificates.Listener) {}
func (p poolCA) VerifyOptions() (x509.VerifyOptions, bool) {
	return x509.VerifyOptions{Roots: p.pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, true
}

// withAuth authenticates every request (401 without credentials) and
// authorizes it against the node (403 unless some subresource the path
// maps to is allowed).
func (s *Server) withAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, ok, err := s.authn.AuthenticateRequest(r)
		if err != nil || !ok {
			if err != nil {
				s.log.Debug("authentication failed", "remote", r.RemoteAddr, "err", err)
			}
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		attrs := requestAttributes(s.cfg.NodeName, resp.User, r)
		var reasons []string
		for _, a := range attrs {
			decision, reason, err := s.authz.Authorize(r.Context(), a)
			if err != nil {
				s.log.Warn("authorization failed", "user", resp.User.GetName(), "verb", a.Verb, "subresource", a.Subresource, "err", err)
				http.Error(w, fmt.Sprintf("Authorization error (user=%s, verb=%s, resource=%s, subresource=%s)", resp.User.GetName(), a.Verb, a.Resource, a.Subresource), http.StatusInternalServerError)
				return
			}
			if decision == authorizer.DecisionAllow {
				next.ServeHTTP(w, r)
				return
			}
			if reason != "" {
				reasons = append(reasons, reason)
			}
		}
		a := attrs[len(attrs)-1]
		msg := fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=%s, subresource(s)=%s)", resp.User.GetName(), a.Verb, a.Resource, subresources(attrs))
		if len(reasons) > 0 {
			msg += ": " + strings.Join(reasons, "; ")
		}
		s.log.Info("request forbidden", "user", resp.User.GetName(), "path", r.URL.Path, "verb", a.Verb)
		http.Error(w, msg, http.StatusForbidden)
	})
}

func subresources(attrs []authorizer.AttributesRecord) string {
	var s []string
	for _, a := range attrs {
		s = append(s, a.Subresource)
	}
	return strings.Join(s, ",")
}

// isSubpath reports whether path is prefix or below it.
func isSubpath(path, prefix string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// requestAttributes are the kubelet's authorization attributes for a
// request (its nodeAuthorizerAttributesGetter with fine-grained
// authorization, on by default since 1.33): resource nodes, name the
// node, verb from the method, and the subresources the path maps to,
// any one of which allows the request; everything without a subresource
// of its own — logs, exec, attach, port-forward — is nodes/proxy.
func requestAttributes(node string, u user.Info, r *http.Request) []authorizer.AttributesRecord {
	verb := ""
	switch r.Method {
	case http.MethodPost:
		verb = "create"
	case http.MethodGet, http.MethodHead:
		verb = "get"
	case http.MethodPut:
		verb = "update"
	case http.MethodPatch:
		verb = "patch"
	case http.MethodDelete:
		verb = "delete"
	}
	p := r.URL.Path
	var subs []string
	switch {
	case isSubpath(p, "/pods"), isSubpath(p, "/runningpods"):
		subs = append(subs, "pods")
	case isSubpath(p, "/healthz"):
		subs = append(subs, "healthz")
	case isSubpath(p, "/configz"):
		subs = append(subs, "configz")
	}
	switch {
	case isSubpath(p, "/stats"):
		subs = append(subs, "stats")
	case isSubpath(p, "/metrics"):
		subs = append(subs, "metrics")
	case isSubpath(p, "/logs"):
		subs = append(subs, "log")
	case isSubpath(p, "/checkpoint"):
		subs = append(subs, "checkpoint")
	default:
		subs = append(subs, "proxy")
	}
	out := make([]authorizer.AttributesRecord, 0, len(subs))
	for _, sub := range subs {
		out = append(out, authorizer.AttributesRecord{
			User:            u,
			Verb:            verb,
			APIVersion:      "v1",
			Resource:        "nodes",
			Subresource:     sub,
			Name:            node,
			ResourceRequest: true,
			Path:            p,
		})
	}
	return out
}
