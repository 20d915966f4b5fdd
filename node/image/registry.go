package image

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/barge-dev/barge/raftstore/pki"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/crypto/bcrypt"
)

// RegistryBinary is the name Debian's docker-registry package (the
// distribution registry, 2.8) installs.
const RegistryBinary = "docker-registry"

// Files the registry's directory holds.
const (
	RegistryConfigFile = "config.yml"
	RegistryCertFile   = "registry.crt"
	RegistryKeyFile    = "registry.key"
	RegistryHtpasswd   = "htpasswd"
	registryDataDir    = "data"
)

// RegistryConfig configures a registry process.
type RegistryConfig struct {
	// Dir holds config.yml, the serving certificate and the images.
	Dir string
	// Addr is host:port to listen on.
	Addr string
	// CertsDir is the cluster's certificate directory: its CA (ca.crt and
	// ca.key) issues the registry's serving certificate.
	CertsDir string
	// Hosts are the names and IPs the certificate is for; Addr's host,
	// localhost and 127.0.0.1 are always included.
	Hosts []string
	// Binary defaults to RegistryBinary found in PATH.
	Binary string
	// Users, when set, are the only clients the registry serves (HTTP
	// basic auth from an htpasswd file, bcrypt): user name to password.
	Users map[string]string
	// Wrapper prefixes the command, e.g. ip netns exec HOST for a lab host.
	Wrapper []string
	// Output receives the registry's log (default: discarded).
	Output io.Writer
	Logger *slog.Logger
}

// WriteRegistryFiles issues the serving certificate (if Dir has none
// from this CA) and writes config.yml: filesystem storage under Dir/data,
// TLS on Addr, deletes allowed. It returns the config file's path.
func WriteRegistryFiles(cfg RegistryConfig) (string, error) {
	if cfg.Dir == "" || cfg.CertsDir == "" {
		return "", errors.New("registry: Dir and CertsDir are required")
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return "", fmt.Errorf("registry address %q: %w", cfg.Addr, err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, registryDataDir), 0o700); err != nil {
		return "", fmt.Errorf("registry: %w", err)
	}
	ca, err := pki.LoadCA(cfg.CertsDir)
	if err != nil {
		return "", fmt.Errorf("registry certificate: %w", err)
	}
	hosts := append([]string{host, "localhost", "127.0.0.1"}, cfg.Hosts...)
	if host == "" || host == "0.0.0.0" || host == "::" {
		hosts = hosts[1:]
	}
	leaf, err := ca.Issue(pki.Request{CommonName: "barge-registry", Hosts: dedupe(hosts), Server: true})
	if err != nil {
		return "", fmt.Errorf("registry certificate: %w", err)
	}
	certPath, keyPath := filepath.Join(cfg.Dir, RegistryCertFile), filepath.Join(cfg.Dir, RegistryKeyFile)
	if err := os.WriteFile(keyPath, leaf.KeyPEM, 0o600); err != nil {
		return "", fmt.Errorf("registry: %w", err)
	}
	if err := os.WriteFile(certPath, leaf.CertPEM, 0o644); err != nil {
		return "", fmt.Errorf("registry: %w", err)
	}
	conf := fmt.Sprintf(`# written by barge: distribution registry 2.8
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: %s
  tls:
    certificate: %s
    key: %s
  headers:
    X-Content-Type-Options: [nosniff]
`, yamlString(filepath.Join(cfg.Dir, registryDataDir)), yamlString(cfg.Addr), yamlString(certPath), yamlString(keyPath))
	if len(cfg.Users) > 0 {
		htpasswd := filepath.Join(cfg.Dir, RegistryHtpasswd)
		if err := writeHtpasswd(htpasswd, cfg.Users); err != nil {
			return "", err
		}
		conf += fmt.Sprintf(`auth:
  htpasswd:
    realm: barge-registry
    path: %s
`, yamlString(htpasswd))
	}
	path := filepath.Join(cfg.Dir, RegistryConfigFile)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return "", fmt.Errorf("registry: %w", err)
	}
	return path, nil
}

// writeHtpasswd writes users in the htpasswd format the registry reads
// (bcrypt only).
func writeHtpasswd(path string, users map[string]string) error {
	names := make([]string, 0, len(users))
	for u := range users {
		if u == "" || strings.ContainsAny(u, ":\n") {
			return fmt.Errorf("registry: user name %q: want no colon or newline", u)
		}
		names = append(names, u)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, u := range names {
		h, err := bcrypt.GenerateFromPassword([]byte(users[u]), bcrypt.DefaultCost)
		if err != nil {
			return fmt.Errorf("registry: password of %s: %w", u, err)
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	return nil
}

func yamlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// Registry is a running registry process.
type Registry struct {
	cfg    RegistryConfig
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // of the process, once exited is closed
	once   sync.Once
}

// StartRegistry writes the registry's files, starts it and returns once
// it answers on Addr over TLS trusted by the cluster CA.
func StartRegistry(ctx context.Context, cfg RegistryConfig) (*Registry, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	bin := cfg.Binary
	if bin == "" {
		p, err := exec.LookPath(RegistryBinary)
		if err != nil {
			return nil, fmt.Errorf("registry: %s not found: apt-get install docker-registry", RegistryBinary)
		}
		bin = p
	}
	confPath, err := WriteRegistryFiles(cfg)
	if err != nil {
		return nil, err
	}
	args := append(append([]string(nil), cfg.Wrapper...), bin, "serve", confPath)
	cmd := exec.Command(args[0], args[1:]...)
	out := cfg.Output
	if out == nil {
		out = io.Discard
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("registry: start %s: %w", bin, err)
	}
	r := &Registry{cfg: cfg, cmd: cmd, exited: make(chan struct{})}
	go func() {
		r.err = cmd.Wait()
		close(r.exited)
	}()
	if err := r.waitReady(ctx); err != nil {
		r.Stop()
		return nil, err
	}
	cfg.Logger.Info("registry started", "addr", cfg.Addr, "dir", cfg.Dir, "pid", cmd.Process.Pid)
	return r, nil
}

func (r *Registry) waitReady(ctx context.Context) error {
	tr, err := Transport(filepath.Join(r.cfg.CertsDir, pki.CACertFile))
	if err != nil {
		return err
	}
	client := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	url := "https://" + r.cfg.Addr + "/v2/"
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("registry: %w", err)
		}
		// With users, ready means it lets one in.
		for u, p := range r.cfg.Users {
			req.SetBasicAuth(u, p)
			break
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		last = err
		select {
		case <-r.exited:
			return fmt.Errorf("registry exited before it answered (%v); last try: %v", r.err, last)
		case <-ctx.Done():
			return fmt.Errorf("registry on %s did not answer: %w (last try: %v)", r.cfg.Addr, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// Addr is where the registry listens.
func (r *Registry) Addr() string { return r.cfg.Addr }

// CAFile is the cluster CA that signed the registry's certificate.
func (r *Registry) CAFile() string { return filepath.Join(r.cfg.CertsDir, pki.CACertFile) }

// Stop ends the registry (SIGTERM, then SIGKILL after 5 s) and waits.
func (r *Registry) Stop() error {
	r.once.Do(func() {
		_ = r.cmd.Process.Signal(os.Interrupt)
		select {
		case <-r.exited:
		case <-time.After(5 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.exited
		}
	})
	return nil
}

// Transport trusts the cluster CA in caFile, and only it: a registry with
// another certificate is refused.
func Transport(caFile string) (*http.Transport, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("cluster CA %s: no certificate in it", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	// Registries live on loopback or lab hosts: never a proxy.
	tr.Proxy = nil
	return tr, nil
}

func remoteOptions(ctx context.Context, caFile string) ([]remote.Option, error) {
	tr, err := Transport(caFile)
	if err != nil {
		return nil, err
	}
	return []remote.Option{remote.WithContext(ctx), remote.WithTransport(tr)}, nil
}

// explain turns registry errors into what went wrong.
func explain(ref string, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		for _, d := range terr.Errors {
			if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
				return fmt.Errorf("image %s not found in the registry: %w", ref, err)
			}
		}
		if terr.StatusCode == http.StatusNotFound {
			return fmt.Errorf("image %s not found in the registry: %w", ref, err)
		}
	}
	var uerr x509.UnknownAuthorityError
	if errors.As(err, &uerr) || strings.Contains(err.Error(), "certificate signed by unknown authority") {
		return fmt.Errorf("registry of %s has a certificate the cluster CA did not sign: %w", ref, err)
	}
	return fmt.Errorf("%s: %w", ref, err)
}

// Push uploads img as ref (REGISTRY/REPO:TAG) over TLS trusting caFile,
// and returns its digest. extra adds options (remote.WithAuth for a
// registry with users, say).
func Push(ctx context.Context, img v1.Image, ref, caFile string, extra ...remote.Option) (v1.Hash, error) {
	r, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("image name %q: %w", ref, err)
	}
	opts, err := remoteOptions(ctx, caFile)
	if err != nil {
		return v1.Hash{}, err
	}
	opts = append(opts, extra...)
	if err := remote.Write(r, img, opts...); err != nil {
		return v1.Hash{}, explain(ref, err)
	}
	return img.Digest()
}

// Fetch reads ref from its registry (to save it, say).
func Fetch(ctx context.Context, ref, caFile string) (v1.Image, error) {
	r, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		return nil, fmt.Errorf("image name %q: %w", ref, err)
	}
	opts, err := remoteOptions(ctx, caFile)
	if err != nil {
		return nil, err
	}
	img, err := remote.Image(r, opts...)
	if err != nil {
		return nil, explain(ref, err)
	}
	return img, nil
}

// RemoteRepo is a repository of a registry and its tags.
type RemoteRepo struct {
	Name string   `json:"name"`
	Tags []string `json:"tags"`
}

// Catalog lists a registry's repositories and their tags.
func Catalog(ctx context.Context, registry, caFile string) ([]RemoteRepo, error) {
	reg, err := name.NewRegistry(registry, name.WeakValidation)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %w", registry, err)
	}
	opts, err := remoteOptions(ctx, caFile)
	if err != nil {
		return nil, err
	}
	repos, err := remote.Catalog(ctx, reg, opts...)
	if err != nil {
		return nil, explain(registry, err)
	}
	sort.Strings(repos)
	out := make([]RemoteRepo, 0, len(repos))
	for _, repo := range repos {
		tags, err := remote.List(reg.Repo(repo), opts...)
		if err != nil {
			return nil, explain(registry+"/"+repo, err)
		}
		sort.Strings(tags)
		out = append(out, RemoteRepo{Name: repo, Tags: tags})
	}
	return out, nil
}
