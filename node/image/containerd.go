package image

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/remotes"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/containerd/containerd/remotes/docker/config"
)

// HostsFile is containerd's registry host configuration file, one per
// registry in a directory named after it, under the config_path.
const HostsFile = "hosts.toml"

// WriteHostsConfig makes containerd trust registry (HOST:PORT) with the
// cluster CA caFile: hostsDir/HOST:PORT/hosts.toml. hostsDir is what
// containerd's CRI config_path names, and what Resolver reads for the
// agent's own pulls.
func WriteHostsConfig(hostsDir, registry, caFile string) error {
	return writeHosts(hostsDir, registry, registry, caFile, `["pull", "resolve", "push"]`)
}

// WriteMirrorConfig serves pulls of upstream (say docker.io) from
// registry, trusting caFile, and never from upstream itself: an
// air-gapped cluster keeps images under their usual names. The mirror
// must hold them under the same repository path (library/busybox for
// docker.io/library/busybox).
func WriteMirrorConfig(hostsDir, upstream, registry, caFile string) error {
	return writeHosts(hostsDir, upstream, registry, caFile, `["pull", "resolve"]`)
}

func writeHosts(hostsDir, host, registry, caFile, caps string) error {
	if strings.ContainsAny(host, "/\\") || host == "" || host == "." || host == ".." {
		return fmt.Errorf("registry host %q: want HOST or HOST:PORT", host)
	}
	ca, err := filepath.Abs(caFile)
	if err != nil {
		return err
	}
	if _, err := os.Stat(ca); err != nil {
		return fmt.Errorf("cluster CA: %w", err)
	}
	dir := filepath.Join(hostsDir, host)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// One server and no [host] entries: a [host] entry would be tried
	// first and the server after it, so a missing image would be
	// reported by the second try. For a mirror the server is the mirror,
	// so nothing ever falls back to the upstream host.
	body := fmt.Sprintf("# written by barge\nserver = %s\ncapabilities = %s\nca = %s\n",
		strconv.Quote("https://"+registry), caps, strconv.Quote(ca))
	return os.WriteFile(filepath.Join(dir, HostsFile), []byte(body), 0o644)
}

// Resolver resolves and fetches images as containerd's CRI would with
// config_path = hostsDir: each registry's hosts.toml there says where it
// is and which CA to trust.
func Resolver(hostsDir string) remotes.Resolver {
	return ResolverWithAuth(hostsDir, nil)
}

// Credentials are a user name and password (or identity token) for a
// registry: what a kubernetes.io/dockerconfigjson secret holds.
type Credentials struct {
	Username string
	Password string
}

// ResolverWithAuth is Resolver presenting creds (when not nil) to every
// registry that asks, as containerd's CRI does with a pull's auth.
func ResolverWithAuth(hostsDir string, creds *Credentials) remotes.Resolver {
	opts := config.HostOptions{HostDir: config.HostDirFromRoot(hostsDir)}
	if creds != nil {
		c := *creds
		opts.Credentials = func(string) (string, string, error) { return c.Username, c.Password, nil }
	}
	return docker.NewResolver(docker.ResolverOptions{Hosts: config.ConfigureHosts(context.Background(), opts)})
}

// Pull fetches ref into client's namespace (the context's, or the
// client's default) and unpacks it for the default snapshotter.
func Pull(ctx context.Context, client *containerd.Client, ref, hostsDir string) (containerd.Image, error) {
	return PullWithAuth(ctx, client, ref, hostsDir, nil)
}

// PullWithAuth is Pull with creds for the registry (nil: anonymous).
func PullWithAuth(ctx context.Context, client *containerd.Client, ref, hostsDir string, creds *Credentials) (containerd.Image, error) {
	img, err := client.Pull(ctx, ref, containerd.WithResolver(ResolverWithAuth(hostsDir, creds)), containerd.WithPullUnpack)
	if err != nil {
		return nil, explainPull(ref, hostsDir, creds != nil, err)
	}
	return img, nil
}

func explainPull(ref, hostsDir string, withCreds bool, err error) error {
	var uerr x509.UnknownAuthorityError
	switch {
	case strings.Contains(err.Error(), "401 Unauthorized") || errors.Is(err, docker.ErrInvalidAuthorization):
		if withCreds {
			return fmt.Errorf("pull %s: the registry refused the credentials of the pod's imagePullSecrets: %w", ref, err)
		}
		return fmt.Errorf("pull %s: the registry requires authentication and the pod has no imagePullSecrets for it: %w", ref, err)
	case errdefs.IsNotFound(err):
		return fmt.Errorf("pull %s: image not found in the registry: %w", ref, err)
	case errors.As(err, &uerr) || strings.Contains(err.Error(), "certificate signed by unknown authority"):
		return fmt.Errorf("pull %s: the registry's certificate is not signed by the CA its %s in %s names: %w", ref, HostsFile, hostsDir, err)
	}
	return fmt.Errorf("pull %s: %w", ref, err)
}

// Import loads a docker or OCI archive into client's namespace and
// unpacks each image, for nodes that cannot reach a registry.
func Import(ctx context.Context, client *containerd.Client, r io.Reader) ([]images.Image, error) {
	imgs, err := client.Import(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if len(imgs) == 0 {
		return nil, errors.New("import: the archive names no image (docker RepoTags or an OCI io.containerd.image.name annotation)")
	}
	for _, i := range imgs {
		if err := containerd.NewImage(client, i).Unpack(ctx, ""); err != nil {
			return nil, fmt.Errorf("import: unpack %s: %w", i.Name, err)
		}
	}
	return imgs, nil
}

// ImportFile is Import of a file.
func ImportFile(ctx context.Context, client *containerd.Client, path string) ([]images.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	imgs, err := Import(ctx, client, f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return imgs, nil
}

// LocalImage is an image in a containerd namespace.
type LocalImage struct {
	Name      string    `json:"name"`
	Digest    string    `json:"digest"`
	MediaType string    `json:"mediaType"`
	Size      int64     `json:"size"`
	Created   time.Time `json:"created"`
}

// List lists the images of client's namespace, by name.
func List(ctx context.Context, client *containerd.Client) ([]LocalImage, error) {
	imgs, err := client.ImageService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]LocalImage, 0, len(imgs))
	for _, i := range imgs {
		size, _ := containerd.NewImage(client, i).Size(ctx)
		out = append(out, LocalImage{Name: i.Name, Digest: i.Target.Digest.String(), MediaType: i.Target.MediaType, Size: size, Created: i.CreatedAt})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, nil
}
