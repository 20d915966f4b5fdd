package apiserver

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/barge-dev/barge/raftstore/pki"
)

// localEtcdURL names the in-process store in kube-apiserver's etcd
// settings; the local dialer ignores it, and no TLS is spoken inside the
// process.
const localEtcdURL = "http://barge-local-peer:2379"

// featureGates are barge's departures from Kubernetes' defaults.
const featureGates = "UnknownVersionInteroperabilityProxy=false"

// args are the kube-apiserver flags of a barge API server: what an
// operator would pass to kube-apiserver for the same cluster.
func (c *Config) args(host string, port int) ([]string, error) {
	dir := c.CertsDir
	file := func(name string) string { return filepath.Join(dir, name) }
	for _, name := range []string{pki.CACertFile, pki.ServerCertFile, pki.ServerKeyFile, pki.ServiceAccountKeyFile, pki.ServiceAccountPublicKeyFile,
		pki.KubeletClientCertFile, pki.KubeletClientKeyFile, pki.FrontProxyCACertFile, pki.FrontProxyClientCertFile, pki.FrontProxyClientKeyFile} {
		if _, err := os.Stat(file(name)); err != nil {
			return nil, fmt.Errorf("apiserver: certificate directory %s lacks %s (barge certs init writes it): %w", dir, name, err)
		}
	}
	advertise := c.AdvertiseAddr
	if advertise == nil {
		advertise = net.ParseIP(host)
	}
	if advertise == nil || advertise.IsUnspecified() {
		return nil, fmt.Errorf("apiserver: listening on %q: give an address to advertise (--advertise-api-addr)", host)
	}
	// The lease reconciler publishes every live API server in
	// default/kubernetes; Kubernetes refuses loopback endpoints, so a
	// single-machine cluster on 127.0.0.1 publishes none.
	reconciler := "lease"
	if advertise.IsLoopback() {
		reconciler = "none"
	}
	a := []string{
		"--bind-address=" + host,
		"--secure-port=" + strconv.Itoa(port),
		"--advertise-address=" + advertise.String(),
		"--endpoint-reconciler-type=" + reconciler,
		"--tls-cert-file=" + file(pki.ServerCertFile),
		"--tls-private-key-file=" + file(pki.ServerKeyFile),
		"--client-ca-file=" + file(pki.CACertFile),
		"--service-account-key-file=" + file(pki.ServiceAccountPublicKeyFile),
		"--service-account-signing-key-file=" + file(pki.ServiceAccountKeyFile),
		"--service-account-issuer=" + DefaultServiceAccountIssuer,
		"--authorization-mode=Node,RBAC",
		// Agents without a credential join with a token (barge certs
		// token create) and ask for one by CSR (node/bootstrap).
		"--enable-bootstrap-token-auth=true",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		"--service-cluster-ip-range=" + c.ServiceCIDR,
		"--default-not-ready-toleration-seconds=" + strconv.FormatInt(int64(c.NotReadyToleration/time.Second), 10),
		"--default-unreachable-toleration-seconds=" + strconv.FormatInt(int64(c.UnreachableToleration/time.Second), 10),
		"--service-node-port-range=" + c.NodePortRange,
		"--kubelet-client-certificate=" + file(pki.KubeletClientCertFile),
		"--kubelet-client-key=" + file(pki.KubeletClientKeyFile),
		"--kubelet-certificate-authority=" + file(pki.CACertFile),
		"--kubelet-preferred-address-types=InternalIP,Hostname,ExternalIP",
		"--proxy-client-cert-file=" + file(pki.FrontProxyClientCertFile),
		"--proxy-client-key-file=" + file(pki.FrontProxyClientKeyFile),
		"--requestheader-client-ca-file=" + file(pki.FrontProxyCACertFile),
		"--requestheader-allowed-names=" + pki.FrontProxyClientCommonName,
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--etcd-prefix=" + StoragePrefix,
		// barge's store compacts its own history (auto-compaction) and
		// records it in compact_rev_key. The API server must still run
		// its compactor object: 0 disables it entirely, and with it the
		// watch on compact_rev_key through which the watch cache learns
		// of compactions and drops older list snapshots, so continue
		// tokens would never expire. A year is "never compact yourself".
		"--etcd-compaction-interval=" + apiServerCompactionInterval.String(),
		"--profiling=false",
		// The mixed-version proxy routes requests between API servers of
		// different Kubernetes versions; a barge cluster runs one. Its
		// peer-lease controller also holds a lock across a store write
		// without a deadline, so with the store gone shutdown never ends.
		"--feature-gates=" + featureGates,
	}
	if c.LocalStore != nil {
		a = append(a, "--etcd-servers="+localEtcdURL)
	} else {
		a = append(a, "--etcd-servers="+strings.Join(c.EtcdServers, ","),
			"--etcd-cafile="+orDefault(c.EtcdCAFile, file(pki.CACertFile)),
			"--etcd-certfile="+orDefault(c.EtcdCertFile, file(pki.ServerCertFile)),
			"--etcd-keyfile="+orDefault(c.EtcdKeyFile, file(pki.ServerKeyFile)))
	}
	authn, err := c.writeAuthenticationConfig()
	if err != nil {
		return nil, err
	}
	a = append(a, "--authentication-config="+authn)
	if c.TokenFile != "" {
		a = append(a, "--token-auth-file="+c.TokenFile)
	}
	return append(a, c.ExtraArgs...), nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// authenticationConfig lets anonymous requests reach the health endpoints
// only, for load balancers and probes; everything else needs a
// certificate or a token (Kubernetes' default lets anonymous users read
// discovery and /version too).
const authenticationConfig = `{
  "apiVersion": "apiserver.config.k8s.io/v1",
  "kind": "AuthenticationConfiguration",
  "anonymous": {
    "enabled": true,
    "conditions": [{"path": "/livez"}, {"path": "/readyz"}, {"path": "/healthz"}]
  }
}
`

func (c *Config) writeAuthenticationConfig() (string, error) {
	if err := os.MkdirAll(c.StateDir, 0o700); err != nil {
		return "", fmt.Errorf("apiserver: state directory: %w", err)
	}
	path := filepath.Join(c.StateDir, "authentication-config.json")
	if err := os.WriteFile(path, []byte(authenticationConfig), 0o600); err != nil {
		return "", fmt.Errorf("apiserver: %w", err)
	}
	return path, nil
}

// apiServerCompactionInterval keeps kube-apiserver's compactor running
// (for its compact_rev_key watch) without it ever compacting.
const apiServerCompactionInterval = 365 * 24 * time.Hour
