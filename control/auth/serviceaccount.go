package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	jwtutil "k8s.io/apiserver/pkg/authentication/token/jwt"
)

// tokenClaims is the JWT payload, laid out exactly as kube-apiserver's bound
// service account tokens so that anything that reads those (client
// libraries, webhooks, OIDC relying parties) reads ours.
type tokenClaims struct {
	jwt.Claims
	Kubernetes *kubernetesClaims `json:"kubernetes.io,omitempty"`
}

type kubernetesClaims struct {
	Namespace      string     `json:"namespace,omitempty"`
	ServiceAccount objectRef  `json:"serviceaccount,omitempty"`
	Pod            *objectRef `json:"pod,omitempty"`
}

type objectRef struct {
	Name string `json:"name,omitempty"`
	UID  string `json:"uid,omitempty"`
}

// TokenIssuer signs service account tokens with ES256. It holds no mutable
// state and is safe for concurrent use.
type TokenIssuer struct {
	issuer string
	signer jose.Signer
	// err is why the issuer cannot sign. The constructor's signature has no
	// error, so a bad key is reported by every Issue instead of panicking.
	err error
}

// NewTokenIssuer returns an issuer that signs with key (which must be on
// P-256) and stamps issuer as the iss claim. Misconfiguration is reported by
// Issue, wrapping ErrInvalidIssuerConfig.
func NewTokenIssuer(key *ecdsa.PrivateKey, issuer string) *TokenIssuer {
	t := &TokenIssuer{issuer: issuer}
	switch {
	case key == nil:
		t.err = fmt.Errorf("%w: no signing key", ErrInvalidIssuerConfig)
		return t
	case key.Curve != elliptic.P256():
		t.err = fmt.Errorf("%w: signing key must be ECDSA P-256 for ES256", ErrInvalidIssuerConfig)
		return t
	case issuer == "":
		t.err = fmt.Errorf("%w: empty issuer", ErrInvalidIssuerConfig)
		return t
	}
	kid, err := keyID(&key.PublicKey)
	if err != nil {
		t.err = fmt.Errorf("%w: deriving key id: %w", ErrInvalidIssuerConfig, err)
		return t
	}
	// The kid lets verifiers that hold several keys (rotation, OIDC JWKS)
	// pick the right one, as with Kubernetes-issued tokens.
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.ES256,
		Key:       &jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"},
	}, nil)
	if err != nil {
		t.err = fmt.Errorf("%w: %w", ErrInvalidIssuerConfig, err)
		return t
	}
	t.signer = signer
	return t
}

// keyID derives the kid the way Kubernetes does (SHA-256 of the DER public
// key), so it is stable across restarts and reveals nothing about the key.
func keyID(pub *ecdsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("marshalling public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// Issue signs a token for sa, valid from now for expiry, for the given
// audiences. expires is the exp claim exactly (whole seconds).
func (t *TokenIssuer) Issue(sa *corev1.ServiceAccount, audiences []string, expiry time.Duration, now time.Time) (token string, expires time.Time, err error) {
	return t.IssueBound(sa, nil, audiences, expiry, now)
}

// IssueBound is Issue for a token that must also die with the object it is
// bound to, as TokenRequest's spec.boundObjectRef. Only Pods (in the service
// account's namespace) can be bound; the caller is expected to have checked
// that the pod exists, has that uid and runs as sa.
func (t *TokenIssuer) IssueBound(sa *corev1.ServiceAccount, bound *authenticationv1.BoundObjectReference, audiences []string, expiry time.Duration, now time.Time) (token string, expires time.Time, err error) {
	if t.err != nil {
		return "", time.Time{}, t.err
	}
	switch {
	case sa == nil:
		return "", time.Time{}, fmt.Errorf("%w: no service account", ErrInvalidTokenRequest)
	case sa.Namespace == "" || sa.Name == "" || sa.UID == "":
		// Without a uid the authenticator could not tell this account
		// from a later one with the same name.
		return "", time.Time{}, fmt.Errorf("%w: service account needs namespace, name and uid", ErrInvalidTokenRequest)
	case expiry <= 0:
		return "", time.Time{}, fmt.Errorf("%w: expiry must be positive, got %s", ErrInvalidTokenRequest, expiry)
	case now.IsZero():
		return "", time.Time{}, fmt.Errorf("%w: zero issue time", ErrInvalidTokenRequest)
	}

	k := &kubernetesClaims{
		Namespace:      sa.Namespace,
		ServiceAccount: objectRef{Name: sa.Name, UID: string(sa.UID)},
	}
	if bound != nil {
		if bound.Kind != "Pod" || (bound.APIVersion != "" && bound.APIVersion != "v1") {
			return "", time.Time{}, fmt.Errorf("%w: cannot bind to %s %s, only v1 Pod", ErrInvalidTokenRequest, bound.APIVersion, bound.Kind)
		}
		if bound.Name == "" || bound.UID == "" {
			return "", time.Time{}, fmt.Errorf("%w: bound pod needs name and uid", ErrInvalidTokenRequest)
		}
		k.Pod = &objectRef{Name: bound.Name, UID: string(bound.UID)}
	}

	expires = now.Add(expiry).Truncate(time.Second)
	claims := tokenClaims{
		Claims: jwt.Claims{
			Issuer:    t.issuer,
			Subject:   serviceaccount.MakeUsername(sa.Namespace, sa.Name),
			Audience:  jwt.Audience(append([]string(nil), audiences...)),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			Expiry:    jwt.NewNumericDate(expires),
			// A unique jti is what audit logs record as the credential
			// id, so one leaked token can be traced and told apart.
			ID: string(uuid.NewUUID()),
		},
		Kubernetes: k,
	}
	token, err = jwt.Signed(t.signer).Claims(claims).Serialize()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("signing service account token: %w", err)
	}
	return token, expires, nil
}

// ServiceAccountGetter is the small interface the authenticator needs. It
// should answer NotFound (apierrors) or (nil, nil) for a missing account.
type ServiceAccountGetter interface {
	Get(namespace, name string) (*corev1.ServiceAccount, error)
}

// PodGetter is implemented by ServiceAccountGetters that can also look up
// pods. Pod-bound tokens are only accepted when the getter is one: without
// it the authenticator cannot tell a live pod's token from a dead one's.
type PodGetter interface {
	GetPod(namespace, name string) (*corev1.Pod, error)
}

type tokenAuthenticator struct {
	pub    *ecdsa.PublicKey
	issuer string
	sas    ServiceAccountGetter
	now    func() time.Time
}

// NewTokenAuthenticator returns an authenticator for tokens from a
// TokenIssuer with the matching private key and issuer. now may be nil for
// time.Now.
//
// Tokens that are not JWTs, or whose iss is not issuer, yield (nil, false,
// nil) so that other authenticators in a union get their turn. A token that
// names this issuer but fails any check yields an error wrapping one of the
// ErrMalformedToken ... ErrBoundObjectInvalid sentinels.
func NewTokenAuthenticator(pub *ecdsa.PublicKey, issuer string, sas ServiceAccountGetter, now func() time.Time) authenticator.Token {
	if now == nil {
		now = time.Now
	}
	return &tokenAuthenticator{pub: pub, issuer: issuer, sas: sas, now: now}
}

func (a *tokenAuthenticator) AuthenticateToken(ctx context.Context, token string) (*authenticator.Response, bool, error) {
	if !a.claimsOurIssuer(token) {
		return nil, false, nil
	}
	resp, err := a.authenticate(ctx, token)
	if err != nil {
		return nil, false, err
	}
	return resp, true, nil
}

// claimsOurIssuer peeks at the unverified payload. It decides only whether
// the token is ours to judge, never whether it is valid; it lets tokens meant
// for other authenticators (static tokens, OIDC) pass without an error.
func (a *tokenAuthenticator) claimsOurIssuer(token string) bool {
	if a.issuer == "" {
		return false
	}
	// Counting first keeps a huge dotted garbage header from allocating.
	if strings.Count(token, ".") != 2 {
		return false
	}
	parts := strings.Split(token, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return false
	}
	var peek struct {
		Issuer string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &peek); err != nil {
		return false
	}
	return peek.Issuer == a.issuer
}

func (a *tokenAuthenticator) authenticate(ctx context.Context, token string) (*authenticator.Response, error) {
	if a.pub == nil {
		return nil, fmt.Errorf("%w: no public key configured", ErrInvalidSignature)
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedToken, err)
	}
	payload, err := jws.Verify(a.pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSignature, err)
	}
	var claims tokenClaims
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, fmt.Errorf("%w: decoding claims: %w", ErrMalformedToken, err)
	}
	// Signed now, so this is the real issuer; the peek was only a hint.
	if claims.Issuer != a.issuer {
		return nil, fmt.Errorf("%w: issuer %q is not %q", ErrMalformedToken, claims.Issuer, a.issuer)
	}

	now := a.now()
	if err := checkTimes(&claims.Claims, now); err != nil {
		return nil, err
	}
	auds, err := checkAudience(ctx, claims.Audience)
	if err != nil {
		return nil, err
	}

	k := claims.Kubernetes
	if k == nil || k.Namespace == "" || k.ServiceAccount.Name == "" || k.ServiceAccount.UID == "" {
		return nil, fmt.Errorf("%w: missing kubernetes.io service account claims", ErrMalformedToken)
	}
	if k.Pod != nil && (k.Pod.Name == "" || k.Pod.UID == "") {
		return nil, fmt.Errorf("%w: incomplete pod claim", ErrMalformedToken)
	}
	if want := serviceaccount.MakeUsername(k.Namespace, k.ServiceAccount.Name); claims.Subject != want {
		return nil, fmt.Errorf("%w: subject %q does not match service account %q", ErrMalformedToken, claims.Subject, want)
	}

	// Deletion within the clock leeway is tolerated so a token is not
	// rejected by one server and accepted by another with a skewed clock.
	deletedBefore := now.Add(-jwt.DefaultLeeway)
	if err := a.checkServiceAccount(k, deletedBefore); err != nil {
		return nil, err
	}
	if err := a.checkPod(k, deletedBefore); err != nil {
		return nil, err
	}

	info := serviceaccount.ServiceAccountInfo{
		Namespace: k.Namespace,
		Name:      k.ServiceAccount.Name,
		UID:       k.ServiceAccount.UID,
	}
	if k.Pod != nil {
		info.PodName, info.PodUID = k.Pod.Name, k.Pod.UID
	}
	if claims.ID != "" {
		info.CredentialID = jwtutil.CredentialIDForJTI(claims.ID)
	}
	return &authenticator.Response{User: info.UserInfo(), Audiences: auds}, nil
}

// checkTimes applies go-jose's one-minute leeway, as Kubernetes does. Unlike
// Kubernetes we require exp: this issuer never mints non-expiring tokens, so
// one without exp was not made here.
func checkTimes(c *jwt.Claims, now time.Time) error {
	if c.Expiry == nil {
		return fmt.Errorf("%w: missing exp claim", ErrMalformedToken)
	}
	err := c.ValidateWithLeeway(jwt.Expected{Time: now}, jwt.DefaultLeeway)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jwt.ErrExpired):
		return fmt.Errorf("%w: expired at %s", ErrTokenExpired, c.Expiry.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrNotValidYet), errors.Is(err, jwt.ErrIssuedInTheFuture):
		return fmt.Errorf("%w: %w", ErrTokenNotValidYet, err)
	default:
		return fmt.Errorf("%w: %w", ErrMalformedToken, err)
	}
}

// checkAudience enforces the audiences the request accepts, if it says any
// (the apiserver puts its API audiences, and TokenReview its spec.audiences,
// into the context). The result is the intersection, which the apiserver
// checks again and TokenReview reports.
func checkAudience(ctx context.Context, tokenAuds jwt.Audience) (authenticator.Audiences, error) {
	wanted, ok := authenticator.AudiencesFrom(ctx)
	if !ok || len(wanted) == 0 {
		return nil, nil
	}
	got := authenticator.Audiences(tokenAuds).Intersect(wanted)
	if len(got) == 0 {
		return nil, fmt.Errorf("%w: token audiences %q are not among %q", ErrInvalidAudience, []string(tokenAuds), []string(wanted))
	}
	return got, nil
}

// checkServiceAccount is what makes deleting a service account revoke its
// tokens: the uid in the token must be the live account's.
func (a *tokenAuthenticator) checkServiceAccount(k *kubernetesClaims, deletedBefore time.Time) error {
	if a.sas == nil {
		return fmt.Errorf("%w: %s/%s: no service account getter configured", ErrServiceAccountNotFound, k.Namespace, k.ServiceAccount.Name)
	}
	sa, err := a.sas.Get(k.Namespace, k.ServiceAccount.Name)
	switch {
	case apierrors.IsNotFound(err) || (err == nil && sa == nil):
		return fmt.Errorf("%w: %s/%s", ErrServiceAccountNotFound, k.Namespace, k.ServiceAccount.Name)
	case err != nil:
		return fmt.Errorf("looking up service account %s/%s: %w", k.Namespace, k.ServiceAccount.Name, err)
	case sa.DeletionTimestamp != nil && sa.DeletionTimestamp.Time.Before(deletedBefore):
		return fmt.Errorf("%w: %s/%s is being deleted", ErrServiceAccountMismatch, k.Namespace, k.ServiceAccount.Name)
	case string(sa.UID) != k.ServiceAccount.UID:
		return fmt.Errorf("%w: service account uid %q does not match token's %q", ErrServiceAccountMismatch, sa.UID, k.ServiceAccount.UID)
	}
	return nil
}

// checkPod makes a pod-bound token die with its pod, as projected tokens do
// in Kubernetes.
func (a *tokenAuthenticator) checkPod(k *kubernetesClaims, deletedBefore time.Time) error {
	if k.Pod == nil {
		return nil
	}
	ref := k.Namespace + "/" + k.Pod.Name
	pods, ok := a.sas.(PodGetter)
	if !ok {
		return fmt.Errorf("%w: bound to pod %s, and pods cannot be looked up to verify it", ErrBoundObjectInvalid, ref)
	}
	pod, err := pods.GetPod(k.Namespace, k.Pod.Name)
	switch {
	case err != nil:
		return fmt.Errorf("%w: bound pod %s: %w", ErrBoundObjectInvalid, ref, err)
	case pod == nil:
		return fmt.Errorf("%w: bound pod %s not found", ErrBoundObjectInvalid, ref)
	case pod.DeletionTimestamp != nil && pod.DeletionTimestamp.Time.Before(deletedBefore):
		return fmt.Errorf("%w: bound pod %s is being deleted", ErrBoundObjectInvalid, ref)
	case string(pod.UID) != k.Pod.UID:
		return fmt.Errorf("%w: pod %s uid %q does not match token's %q", ErrBoundObjectInvalid, ref, pod.UID, k.Pod.UID)
	}
	return nil
}
