package pki

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/template"
)

// KubeconfigCluster and KubeconfigContext name the cluster and context of
// every kubeconfig barge writes, so that one user's files look alike.
const (
	KubeconfigCluster = "barge"
	KubeconfigContext = "barge"
)

// kubeconfigTemplate is written by hand so that pki needs no YAML library.
// Every value is either base64 or passed through yamlQuote, so no input can
// change the document's structure.
const kubeconfigTemplate = `apiVersion: v1
kind: Config
clusters:
- name: {{q .Cluster}}
  cluster:
    server: {{q .Server}}
    certificate-authority-data: {{b64 .CA}}
users:
- name: {{q .User}}
  user:
    client-certificate-data: {{b64 .Cert}}
    client-key-data: {{b64 .Key}}
contexts:
- name: {{q .Context}}
  context:
    cluster: {{q .Cluster}}
    user: {{q .User}}
current-context: {{q .Context}}
preferences: {}
`

// Kubeconfig renders a kubeconfig for server with the CA and the user's
// client certificate embedded, so the file works wherever it is copied.
func Kubeconfig(server string, caPEM, certPEM, keyPEM []byte, user string) []byte {
	tmpl := template.Must(template.New("kubeconfig").Funcs(template.FuncMap{
		"q":   yamlQuote,
		"b64": base64.StdEncoding.EncodeToString,
	}).Parse(kubeconfigTemplate))
	var buf bytes.Buffer
	// Executing a parsed template into a buffer with plain string and byte
	// fields cannot fail.
	_ = tmpl.Execute(&buf, struct {
		Cluster, Context, Server, User string
		CA, Cert, Key                  []byte
	}{KubeconfigCluster, KubeconfigContext, server, user, caPEM, certPEM, keyPEM})
	return buf.Bytes()
}

// WriteKubeconfig writes Kubeconfig(...) to path with mode 0600, as it
// holds a private key.
func WriteKubeconfig(path, server string, caPEM, certPEM, keyPEM []byte, user string) error {
	if server == "" {
		return errors.New("pki: kubeconfig server URL is empty")
	}
	if user == "" {
		return errors.New("pki: kubeconfig user is empty")
	}
	return writeFile(path, Kubeconfig(server, caPEM, certPEM, keyPEM, user), 0o600)
}

// KubeconfigServer returns the first cluster's server URL of a kubeconfig.
// It reads the simple layout barge writes (and kubectl's own), not YAML in
// general.
func KubeconfigServer(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("pki: read kubeconfig: %w", err)
	}
	for line := range strings.Lines(string(data)) {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "server:")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch {
		case strings.HasPrefix(v, `"`):
			var s string
			if err := json.Unmarshal([]byte(v), &s); err != nil {
				return "", fmt.Errorf("pki: %s: server %s: %w", path, v, err)
			}
			v = s
		case strings.HasPrefix(v, `'`):
			v = strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(v, `'`), `'`), `''`, `'`)
		}
		if v == "" {
			return "", fmt.Errorf("pki: %s: empty server URL", path)
		}
		return v, nil
	}
	return "", fmt.Errorf("pki: %s: no cluster server URL found", path)
}

// yamlQuote makes a YAML double-quoted scalar; JSON's string syntax is a
// subset of it.
func yamlQuote(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}
