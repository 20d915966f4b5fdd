package auth

// Error is the type of this package's sentinel errors. It is a string type so
// the sentinels can be constants: callers match them with errors.Is, and no
// package-level variable exists that anything could reassign.
type Error string

func (e Error) Error() string { return string(e) }

// Sentinels wrapped (with %w) by the errors this package returns.
const (
	// ErrNoUser means an authorisation question was asked without a user;
	// the request never went through authentication, which is a wiring bug.
	ErrNoUser Error = "no user on request"
	// ErrNoAuthorizer means a review endpoint was built without the
	// authoriser or rule resolver it answers from.
	ErrNoAuthorizer Error = "no authorizer configured"
	// ErrUnsupportedRoleRefKind means a binding refers to something that is
	// neither a Role nor a ClusterRole.
	ErrUnsupportedRoleRefKind Error = "unsupported role reference kind"

	// ErrInvalidIssuerConfig means the TokenIssuer cannot sign: no key, or a
	// key on a curve other than P-256.
	ErrInvalidIssuerConfig Error = "service account token issuer is misconfigured"
	// ErrInvalidTokenRequest means Issue was asked for a token it cannot
	// honestly mint (missing service account identity, non-positive expiry,
	// unsupported bound object).
	ErrInvalidTokenRequest Error = "invalid service account token request"

	// ErrMalformedToken means the token claims to come from this issuer but
	// is not a well-formed ES256 JWS with the expected claims.
	ErrMalformedToken Error = "service account token is malformed"
	// ErrInvalidSignature means the signature does not verify with the
	// issuer's public key.
	ErrInvalidSignature Error = "service account token signature is invalid"
	// ErrTokenExpired means the exp claim (plus leeway) is in the past.
	ErrTokenExpired Error = "service account token has expired"
	// ErrTokenNotValidYet means the nbf or iat claim is in the future.
	ErrTokenNotValidYet Error = "service account token is not valid yet"
	// ErrInvalidAudience means none of the token's audiences is one the
	// request accepts.
	ErrInvalidAudience Error = "service account token audience is invalid"
	// ErrServiceAccountNotFound means the service account named by the
	// token no longer exists.
	ErrServiceAccountNotFound Error = "service account of token not found"
	// ErrServiceAccountMismatch means a service account of that name exists
	// but it is not the one the token was issued to (different uid), or it
	// is being deleted.
	ErrServiceAccountMismatch Error = "service account of token has been deleted or recreated"
	// ErrBoundObjectInvalid means the token is bound to a pod that is gone,
	// was replaced, or cannot be looked up.
	ErrBoundObjectInvalid Error = "service account token has been invalidated"
)
