// Package auth owns who a request is and what it may do: service account
// token issuance and authentication, RBAC authorisation evaluated the way
// kube-apiserver evaluates it, the bootstrap cluster roles and bindings, and
// the self-subject access and rules review endpoints built on top of them.
//
// Everything here is expressed in the Kubernetes library interfaces
// (authenticator.Token, authorizer.Authorizer, authorizer.RuleResolver,
// rest.Storage) so the generic apiserver can wire it in unchanged, and so
// behaviour can be compared line for line with kube-apiserver.
//
// Imports are limited to the standard library, k8s.io/* modules and
// github.com/go-jose/go-jose/v4. This package must not import any other barge
// package: it sits below the API server and is shared by it, and a dependency
// back into the server would make the authorisation rules depend on how they
// are served.
package auth
