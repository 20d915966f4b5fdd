package apiserver

import (
	"fmt"
	"path/filepath"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	requestunion "k8s.io/apiserver/pkg/authentication/request/union"
	"k8s.io/apiserver/pkg/authentication/request/x509"
	"k8s.io/apiserver/pkg/authentication/token/tokenfile"
	tokenunion "k8s.io/apiserver/pkg/authentication/token/union"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	authzunion "k8s.io/apiserver/pkg/authorization/union"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/barge-dev/barge/control/auth"
	"github.com/barge-dev/barge/raftstore/pki"
)

// security is what authentication and authorisation hand to the registry.
type security struct {
	rules  authorizer.RuleResolver
	tokens *auth.TokenIssuer
}

// newSecurity sets up who a request is (client certificate from the
// cluster CA, static token, or service account token; anything else is
// 401) and what it may do (RBAC; system:masters may do everything).
func newSecurity(cfg Config, gc *genericapiserver.RecommendedConfig, client kubernetes.Interface, inf informers.SharedInformerFactory) (*security, error) {
	ca, err := dynamiccertificates.NewDynamicCAContentFromFile("client-ca", filepath.Join(cfg.CertsDir, pki.CACertFile))
	if err != nil {
		return nil, fmt.Errorf("apiserver: client CA: %w", err)
	}
	if err := gc.Authentication.ApplyClientCert(ca, gc.SecureServing); err != nil {
		return nil, fmt.Errorf("apiserver: client CA: %w", err)
	}
	gc.Authentication.APIAudiences = authenticator.Audiences{DefaultServiceAccountIssuer}

	var tokens []authenticator.Token
	if cfg.TokenFile != "" {
		static, err := tokenfile.NewCSV(cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("apiserver: token file: %w", err)
		}
		tokens = append(tokens, static)
	}
	sec := &security{}
	key, err := pki.LoadServiceAccountKey(cfg.CertsDir)
	if err != nil {
		// Without the key the cluster still works for certificate and
		// static token users; only service account tokens are off.
		cfg.Logger.Warn("service account tokens disabled", "err", err)
	} else {
		sec.tokens = auth.NewTokenIssuer(key, DefaultServiceAccountIssuer)
		// A service account the cache has not seen yet is read from the
		// store, so a token for an account created a moment ago works.
		sas := auth.NewListerGetter(inf.Core().V1().ServiceAccounts().Lister(), inf.Core().V1().Pods().Lister(), client)
		tokens = append(tokens, auth.NewTokenAuthenticator(&key.PublicKey, DefaultServiceAccountIssuer, sas, time.Now))
	}
	requests := []authenticator.Request{x509.NewDynamic(ca.VerifyOptions, x509.CommonNameUserConversion)}
	if len(tokens) > 0 {
		requests = append(requests, bearertoken.New(tokenunion.New(tokens...)))
	}
	gc.Authentication.Authenticator = group.NewAuthenticatedGroupAdder(requestunion.New(requests...))

	rbacInf := inf.Rbac().V1()
	rbac := auth.NewRBAC(rbacInf.Roles().Lister(), rbacInf.RoleBindings().Lister(), rbacInf.ClusterRoles().Lister(), rbacInf.ClusterRoleBindings().Lister())
	authz, err := authzunion.New(authzunion.NamedAuthorizer{AuthorizerName: "rbac", Authorizer: rbac})
	if err != nil {
		return nil, fmt.Errorf("apiserver: authorizer: %w", err)
	}
	gc.Authorization.Authorizer = authz
	gc.RuleResolver = rbac
	sec.rules = rbac
	// The loopback client (controllers, admission) authenticates with a
	// random token as a member of system:masters.
	genericapiserver.AuthorizeClientBearerToken(gc.LoopbackClientConfig, &gc.Authentication, &gc.Authorization)
	return sec, nil
}
