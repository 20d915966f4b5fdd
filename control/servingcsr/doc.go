// Package servingcsr is barge's own leader-only approver of kubelet
// serving certificates: CertificateSigningRequests for signer
// kubernetes.io/kubelet-serving that an agent bootstrapped with a token
// makes for its kubelet API. kube-controller-manager signs them (csrsigning)
// but approves only client certificates (csrapproving), because whether a
// node may claim an address is a cluster's policy; kubeadm clusters leave
// it to the administrator or to a third-party approver. barge's policy,
// which such approvers also use:
//
//   - the requester is the node itself: user system:node:NAME in group
//     system:nodes, and the CSR's subject is CN=system:node:NAME,
//     O=system:nodes with serving usages only (upstream's
//     ValidateKubeletServingCSR);
//   - every DNS name is NAME; every IP address is one of the Node's own
//     InternalIP or ExternalIP addresses.
//
// A request that breaks a rule is denied with a condition saying which;
// one whose Node is not registered yet, or has no addresses yet, waits for
// the Node. Approvals go through the term's fenced client.
//
// servingcsr may import k8s.io/*.
package servingcsr
