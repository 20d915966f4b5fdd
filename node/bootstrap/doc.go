// Package bootstrap is a node's TLS bootstrap, the kubelet's flow: with a
// bootstrap token, a CertificateSigningRequest for the node's client
// certificate (signer kubernetes.io/kube-apiserver-client-kubelet:
// kube-controller-manager's csrapproving approves it for
// system:bootstrappers, csrsigning signs it with the cluster CA); then,
// as the node, one for the kubelet API's serving certificate
// (kubernetes.io/kubelet-serving, approved by control/servingcsr for the
// node's own name and addresses). client-go's util/certificate/csr makes
// and waits for the requests; this package makes the keys and subjects.
//
// bootstrap may import k8s.io/*.
package bootstrap
