package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/user"
)

const testIssuer = "https://barge.test"

// testKeyPEM is a throwaway key used only by tests. It is fixed, rather than
// generated per run, so that the signed tokens kept in testdata/fuzz still
// verify and let the fuzzer reach the claim checks behind the signature.
const testKeyPEM = `-----BEGIN EC PRIVATE KEY-----
MHcCAQEEICMGNDdz3ZpH1vFafht6an6nKlZ9n13Uk819+37wfsz7oAoGCCqGSM49
AwEHoUQDQgAECH3/0elcBXK8FZPRmVHsI5o1LJZ2XUC0ruiLEB8ka+qcjrvKlN/L
o5PwpGNeX2IxfOJePjDGuRnu4LEuos/cuA==
-----END EC PRIVATE KEY-----`

// testNow is the fixed clock of the tests and the fuzz corpus.
func testNow() time.Time { return time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC) }

func testKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	block, _ := pem.Decode([]byte(testKeyPEM))
	if block == nil {
		t.Fatal("bad test key PEM")
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("parsing test key: %v", err)
	}
	return key
}

func newKey(t testing.TB, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func testSA(ns, name, uid string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid)}}
}

func testPod(ns, name, uid string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid)}}
}

// fakeSAs is a ServiceAccountGetter over a map; it answers NotFound like a
// lister does.
type fakeSAs struct {
	sas map[string]*corev1.ServiceAccount
	err error
}

func (f fakeSAs) Get(namespace, name string) (*corev1.ServiceAccount, error) {
	if f.err != nil {
		return nil, f.err
	}
	if sa, ok := f.sas[namespace+"/"+name]; ok {
		return sa, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "serviceaccounts"}, name)
}

// fakeSAsAndPods can also verify pod-bound tokens.
type fakeSAsAndPods struct {
	fakeSAs
	pods map[string]*corev1.Pod
}

func (f fakeSAsAndPods) GetPod(namespace, name string) (*corev1.Pod, error) {
	if pod, ok := f.pods[namespace+"/"+name]; ok {
		return pod, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, name)
}

func saMap(sas ...*corev1.ServiceAccount) map[string]*corev1.ServiceAccount {
	m := map[string]*corev1.ServiceAccount{}
	for _, sa := range sas {
		m[sa.Namespace+"/"+sa.Name] = sa
	}
	return m
}

// signClaims signs arbitrary claims with key, for tokens Issue would refuse
// to make.
func signClaims(t testing.TB, key *ecdsa.PrivateKey, claims any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func rawClaims(sub, ns, name, uid string) map[string]any {
	return map[string]any{
		"iss": testIssuer,
		"sub": sub,
		"exp": testNow().Add(time.Hour).Unix(),
		"iat": testNow().Unix(),
		"nbf": testNow().Unix(),
		"kubernetes.io": map[string]any{
			"namespace":      ns,
			"serviceaccount": map[string]any{"name": name, "uid": uid},
		},
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestTokenAuthenticate(t *testing.T) {
	key := testKey(t)
	sa := testSA("ns1", "builder", "uid-1")
	pod := testPod("ns1", "web-0", "pod-uid-1")
	issuer := NewTokenIssuer(key, testIssuer)
	issue := func(auds ...string) string {
		tok, _, err := issuer.Issue(sa, auds, time.Hour, testNow())
		if err != nil {
			t.Fatalf("Issue: %v", err)
		}
		return tok
	}
	podToken, _, err := issuer.IssueBound(sa, &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}, []string{"api"}, time.Hour, testNow())
	if err != nil {
		t.Fatalf("IssueBound: %v", err)
	}
	otherKeyToken, _, err := NewTokenIssuer(newKey(t, elliptic.P256()), testIssuer).Issue(sa, []string{"api"}, time.Hour, testNow())
	if err != nil {
		t.Fatal(err)
	}
	otherIssuerToken, _, err := NewTokenIssuer(key, "https://elsewhere").Issue(sa, []string{"api"}, time.Hour, testNow())
	if err != nil {
		t.Fatal(err)
	}
	valid := issue("api")
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + b64(strings.Replace(mustDecode(t, parts[1]), "builder", "admin00", 2)) + "." + parts[2]
	unsigned := b64(`{"alg":"none"}`) + "." + parts[1] + "."
	hs256 := b64(`{"alg":"HS256"}`) + "." + parts[1] + "." + parts[2]

	noExp := rawClaims("system:serviceaccount:ns1:builder", "ns1", "builder", "uid-1")
	delete(noExp, "exp")
	noK8s := rawClaims("system:serviceaccount:ns1:builder", "ns1", "builder", "uid-1")
	delete(noK8s, "kubernetes.io")
	badAud := rawClaims("system:serviceaccount:ns1:builder", "ns1", "builder", "uid-1")
	badAud["aud"] = 42

	deleting := testSA("ns1", "builder", "uid-1")
	deleting.DeletionTimestamp = &metav1.Time{Time: testNow().Add(-time.Hour)}
	injected := errors.New("injected")

	tests := []struct {
		name      string
		token     string
		sas       ServiceAccountGetter
		now       time.Time
		audiences authenticator.Audiences // set on the context when non-nil
		wantOK    bool
		wantErrIs error
		wantAuds  []string
		wantPod   bool
	}{
		{name: "round trip", token: valid, wantOK: true},
		{name: "round trip with request audiences", token: issue("api", "x"), audiences: authenticator.Audiences{"other", "api"}, wantOK: true, wantAuds: []string{"api"}},
		{name: "within clock leeway after exp", token: valid, now: testNow().Add(time.Hour + 30*time.Second), wantOK: true},
		{name: "expired", token: valid, now: testNow().Add(time.Hour + 2*time.Minute), wantErrIs: ErrTokenExpired},
		{name: "not valid yet", token: valid, now: testNow().Add(-2 * time.Minute), wantErrIs: ErrTokenNotValidYet},
		{name: "wrong key", token: otherKeyToken, wantErrIs: ErrInvalidSignature},
		{name: "tampered payload", token: tampered, wantErrIs: ErrInvalidSignature},
		{name: "alg none", token: unsigned, wantErrIs: ErrMalformedToken},
		{name: "alg HS256", token: hs256, wantErrIs: ErrMalformedToken},
		{name: "other issuer passes through", token: otherIssuerToken},
		{name: "opaque token passes through", token: "abcdef0123456789"},
		{name: "empty token passes through", token: ""},
		{name: "json token passes through", token: `{"iss":"https://barge.test"}`},
		{name: "garbage segments pass through", token: "a.b.c"},
		{name: "service account deleted", token: valid, sas: fakeSAs{}, wantErrIs: ErrServiceAccountNotFound},
		{name: "service account recreated", token: valid, sas: fakeSAs{sas: saMap(testSA("ns1", "builder", "uid-2"))}, wantErrIs: ErrServiceAccountMismatch},
		{name: "service account being deleted", token: valid, sas: fakeSAs{sas: saMap(deleting)}, wantErrIs: ErrServiceAccountMismatch},
		{name: "service account lookup fails", token: valid, sas: fakeSAs{err: injected}, wantErrIs: injected},
		{name: "audience mismatch", token: issue("vault"), audiences: authenticator.Audiences{"api"}, wantErrIs: ErrInvalidAudience},
		{name: "no audience but request wants one", token: issue(), audiences: authenticator.Audiences{"api"}, wantErrIs: ErrInvalidAudience},
		{name: "no audience and none wanted", token: issue(), wantOK: true},
		{name: "pod bound", token: podToken, sas: fakeSAsAndPods{fakeSAs{sas: saMap(sa)}, map[string]*corev1.Pod{"ns1/web-0": pod}}, wantOK: true, wantPod: true},
		{name: "pod bound, pod gone", token: podToken, sas: fakeSAsAndPods{fakeSAs{sas: saMap(sa)}, nil}, wantErrIs: ErrBoundObjectInvalid},
		{name: "pod bound, pod recreated", token: podToken, sas: fakeSAsAndPods{fakeSAs{sas: saMap(sa)}, map[string]*corev1.Pod{"ns1/web-0": testPod("ns1", "web-0", "pod-uid-2")}}, wantErrIs: ErrBoundObjectInvalid},
		{name: "pod bound, pods not checkable", token: podToken, wantErrIs: ErrBoundObjectInvalid},
		{name: "no exp", token: signClaims(t, key, noExp), wantErrIs: ErrMalformedToken},
		{name: "no kubernetes claims", token: signClaims(t, key, noK8s), wantErrIs: ErrMalformedToken},
		{name: "subject disagrees with claims", token: signClaims(t, key, rawClaims("system:serviceaccount:ns1:admin", "ns1", "builder", "uid-1")), wantErrIs: ErrMalformedToken},
		{name: "aud of wrong type", token: signClaims(t, key, badAud), wantErrIs: ErrMalformedToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sas := tt.sas
			if sas == nil {
				sas = fakeSAs{sas: saMap(sa)}
			}
			now := tt.now
			if now.IsZero() {
				now = testNow()
			}
			ctx := context.Background()
			if tt.audiences != nil {
				ctx = authenticator.WithAudiences(ctx, tt.audiences)
			}
			a := NewTokenAuthenticator(&key.PublicKey, testIssuer, sas, func() time.Time { return now })
			resp, ok, err := a.AuthenticateToken(ctx, tt.token)

			if tt.wantErrIs != nil {
				if ok || resp != nil || !errors.Is(err, tt.wantErrIs) {
					t.Fatalf("got (%v, %v, %v), want error %v", resp, ok, err, tt.wantErrIs)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if ok != tt.wantOK || (ok != (resp != nil)) {
				t.Fatalf("ok = %v (resp %v), want %v", ok, resp, tt.wantOK)
			}
			if !ok {
				return
			}
			u := resp.User
			if u.GetName() != "system:serviceaccount:ns1:builder" || u.GetUID() != "uid-1" {
				t.Errorf("user = %q uid %q", u.GetName(), u.GetUID())
			}
			if g := strings.Join(u.GetGroups(), ","); g != "system:serviceaccounts,system:serviceaccounts:ns1" {
				t.Errorf("groups = %q", g)
			}
			if id := u.GetExtra()[user.CredentialIDKey]; len(id) != 1 || !strings.HasPrefix(id[0], "JTI=") {
				t.Errorf("credential id = %q, want JTI=<jti>", id)
			}
			if strings.Join(resp.Audiences, ",") != strings.Join(tt.wantAuds, ",") {
				t.Errorf("audiences = %q, want %q", resp.Audiences, tt.wantAuds)
			}
			gotPod := u.GetExtra()[serviceaccount.PodNameKey]
			if tt.wantPod != (len(gotPod) == 1 && gotPod[0] == "web-0") {
				t.Errorf("pod-name extra = %q, want bound %v", gotPod, tt.wantPod)
			}
		})
	}
}

func mustDecode(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTokenAuthenticatorMisconfigured(t *testing.T) {
	key := testKey(t)
	tok, _, err := NewTokenIssuer(key, testIssuer).Issue(testSA("ns1", "builder", "uid-1"), nil, time.Hour, testNow())
	if err != nil {
		t.Fatal(err)
	}
	clock := testNow
	tests := []struct {
		name      string
		a         authenticator.Token
		wantErrIs error
	}{
		{"no public key", NewTokenAuthenticator(nil, testIssuer, fakeSAs{}, clock), ErrInvalidSignature},
		{"no getter", NewTokenAuthenticator(&key.PublicKey, testIssuer, nil, clock), ErrServiceAccountNotFound},
		{"empty issuer claims nothing", NewTokenAuthenticator(&key.PublicKey, "", fakeSAs{}, clock), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, ok, err := tt.a.AuthenticateToken(context.Background(), tok)
			if ok || resp != nil || !errors.Is(err, tt.wantErrIs) || (tt.wantErrIs == nil && err != nil) {
				t.Fatalf("got (%v, %v, %v), want error %v", resp, ok, err, tt.wantErrIs)
			}
		})
	}
}

func TestTokenIssuerClaims(t *testing.T) {
	key := testKey(t)
	sa := testSA("ns1", "builder", "uid-1")
	now := testNow().Add(300 * time.Millisecond)
	tok, expires, err := NewTokenIssuer(key, testIssuer).IssueBound(sa,
		&authenticationv1.BoundObjectReference{Kind: "Pod", Name: "web-0", UID: "pod-uid-1"},
		[]string{"api", "vault"}, 10*time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := testNow().Add(10 * time.Minute); !expires.Equal(want) {
		t.Errorf("expires = %v, want %v", expires, want)
	}

	parsed, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := parsed.Signatures[0].Header
	wantKid, err := keyID(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if h.Algorithm != "ES256" || h.KeyID != wantKid {
		t.Errorf("header alg %q kid %q, want ES256 %q", h.Algorithm, h.KeyID, wantKid)
	}

	var got map[string]any
	if err := json.Unmarshal(parsed.UnsafePayloadWithoutVerification(), &got); err != nil {
		t.Fatal(err)
	}
	num := func(v any) int64 { f, _ := v.(float64); return int64(f) }
	checks := []struct {
		claim string
		ok    bool
	}{
		{"iss", got["iss"] == testIssuer},
		{"sub", got["sub"] == "system:serviceaccount:ns1:builder"},
		{"aud", func() bool { a, _ := got["aud"].([]any); return len(a) == 2 && a[0] == "api" && a[1] == "vault" }()},
		{"exp", num(got["exp"]) == expires.Unix()},
		{"iat", num(got["iat"]) == testNow().Unix()},
		{"nbf", num(got["nbf"]) == testNow().Unix()},
		{"jti", func() bool { s, _ := got["jti"].(string); return len(s) == 36 }()},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("claim %s = %v", c.claim, got[c.claim])
		}
	}
	k8s, _ := json.Marshal(got["kubernetes.io"])
	if want := `{"namespace":"ns1","pod":{"name":"web-0","uid":"pod-uid-1"},"serviceaccount":{"name":"builder","uid":"uid-1"}}`; string(k8s) != want {
		t.Errorf("kubernetes.io = %s, want %s", k8s, want)
	}
}

func TestTokenIssuerRejects(t *testing.T) {
	good := testKey(t)
	type request struct {
		issuer *TokenIssuer
		sa     *corev1.ServiceAccount
		bound  *authenticationv1.BoundObjectReference
		expiry time.Duration
		now    time.Time
	}
	tests := []struct {
		name      string
		change    func(*request)
		wantErrIs error
	}{
		{"nil key", func(r *request) { r.issuer = NewTokenIssuer(nil, testIssuer) }, ErrInvalidIssuerConfig},
		{"P-384 key", func(r *request) { r.issuer = NewTokenIssuer(newKey(t, elliptic.P384()), testIssuer) }, ErrInvalidIssuerConfig},
		{"empty issuer", func(r *request) { r.issuer = NewTokenIssuer(good, "") }, ErrInvalidIssuerConfig},
		{"nil service account", func(r *request) { r.sa = nil }, ErrInvalidTokenRequest},
		{"service account without uid", func(r *request) { r.sa.UID = "" }, ErrInvalidTokenRequest},
		{"service account without namespace", func(r *request) { r.sa.Namespace = "" }, ErrInvalidTokenRequest},
		{"zero expiry", func(r *request) { r.expiry = 0 }, ErrInvalidTokenRequest},
		{"negative expiry", func(r *request) { r.expiry = -time.Second }, ErrInvalidTokenRequest},
		{"zero now", func(r *request) { r.now = time.Time{} }, ErrInvalidTokenRequest},
		{"bound to secret", func(r *request) {
			r.bound = &authenticationv1.BoundObjectReference{Kind: "Secret", APIVersion: "v1", Name: "s", UID: "u"}
		}, ErrInvalidTokenRequest},
		{"bound pod without uid", func(r *request) {
			r.bound = &authenticationv1.BoundObjectReference{Kind: "Pod", Name: "p"}
		}, ErrInvalidTokenRequest},
		{"bound pod of other version", func(r *request) {
			r.bound = &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v2", Name: "p", UID: "u"}
		}, ErrInvalidTokenRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := request{
				issuer: NewTokenIssuer(good, testIssuer),
				sa:     testSA("ns1", "builder", "uid-1"),
				expiry: time.Hour,
				now:    testNow(),
			}
			tt.change(&r)
			tok, exp, err := r.issuer.IssueBound(r.sa, r.bound, []string{"api"}, r.expiry, r.now)
			if !errors.Is(err, tt.wantErrIs) || tok != "" || !exp.IsZero() {
				t.Fatalf("got (%q, %v, %v), want error %v", tok, exp, err, tt.wantErrIs)
			}
		})
	}
}

// FuzzTokenAuthenticate feeds arbitrary strings to the authenticator. It must
// never panic, never return a user together with an error, and never
// authenticate anything but the one service account that exists.
func FuzzTokenAuthenticate(f *testing.F) {
	key := testKey(f)
	sa := testSA("ns1", "builder", "uid-1")
	pod := testPod("ns1", "web-0", "pod-uid-1")
	issuer := NewTokenIssuer(key, testIssuer)
	valid, _, err := issuer.Issue(sa, []string{"api"}, time.Hour, testNow())
	if err != nil {
		f.Fatal(err)
	}
	bound, _, err := issuer.IssueBound(sa, &authenticationv1.BoundObjectReference{Kind: "Pod", Name: pod.Name, UID: pod.UID}, []string{"api"}, time.Hour, testNow())
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(valid, ".")
	for _, seed := range []string{
		valid,
		bound,
		"",
		".",
		"..",
		"a.b.c",
		"e30.e30.e30",
		parts[0] + "." + parts[1] + ".",
		parts[0] + "." + parts[1] + "." + parts[2][:10],
		b64(`{"alg":"none"}`) + "." + parts[1] + ".",
		b64(`{"alg":"ES256","crit":["exp"]}`) + "." + parts[1] + "." + parts[2],
		"x." + b64(`{"iss":"`+testIssuer+`"}`) + ".y",
		valid + ".extra",
		strings.Repeat(".", 100),
	} {
		f.Add(seed)
	}
	sas := fakeSAsAndPods{fakeSAs{sas: saMap(sa)}, map[string]*corev1.Pod{"ns1/web-0": pod}}
	a := NewTokenAuthenticator(&key.PublicKey, testIssuer, sas, testNow)
	ctx := authenticator.WithAudiences(context.Background(), authenticator.Audiences{"api"})

	f.Fuzz(func(t *testing.T, token string) {
		resp, ok, err := a.AuthenticateToken(ctx, token)
		switch {
		case ok && (resp == nil || err != nil):
			t.Fatalf("ok with resp %v, err %v", resp, err)
		case !ok && resp != nil:
			t.Fatalf("not ok but resp %v", resp)
		case ok && resp.User.GetName() != "system:serviceaccount:ns1:builder":
			t.Fatalf("authenticated unexpected user %q", resp.User.GetName())
		}
	})
}
