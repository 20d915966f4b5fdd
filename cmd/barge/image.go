package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/barge-dev/barge/node/image"
	"github.com/barge-dev/barge/raftstore/pki"
	"github.com/containerd/containerd"
	"github.com/spf13/cobra"
)

// DefaultContainerdAddress is the system containerd's socket.
const defaultContainerdAddress = "/run/containerd/containerd.sock"

func newImageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build images from local files, push them to the cluster registry, import them into containerd",
		Long: `Images without Docker: 'build' makes OCI images from Debian packages and
local files (built-in recipes: ` + strings.Join(image.RecipeNames(), ", ") + `; or a YAML/JSON spec), 'push' and
'save' move them to and from a registry that the cluster CA signed, 'import'
loads an archive into a node's containerd namespace for air-gapped nodes,
'ls' lists a registry or a namespace, 'registry' runs Debian's
docker-registry with a certificate from the cluster CA, and 'trust' writes
containerd's hosts.toml for it.`,
	}
	cmd.AddCommand(newImageBuildCmd(), newImagePushCmd(), newImageSaveCmd(), newImageImportCmd(),
		newImageLsCmd(), newImageRegistryCmd(), newImageTrustCmd())
	return cmd
}

// caFlag is the certificate directory whose ca.crt registries must be
// signed by.
type caFlag struct{ certs string }

func (c *caFlag) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.certs, "certs", "", "certificate directory from `barge certs init`; its ca.crt must have signed the registry's certificate (env BARGE_CERTS)")
}

func (c *caFlag) caFile() (string, error) {
	if c.certs == "" {
		c.certs = os.Getenv("BARGE_CERTS")
	}
	if c.certs == "" {
		return "", errors.New("no certificates: give --certs DIR or set BARGE_CERTS")
	}
	return filepath.Join(c.certs, pki.CACertFile), nil
}

type containerdFlags struct{ address, namespace string }

func (f *containerdFlags) register(cmd *cobra.Command, nsRequired bool) {
	cmd.Flags().StringVar(&f.address, "address", defaultContainerdAddress, "containerd socket")
	help := "containerd namespace (one per node)"
	if !nsRequired {
		help += "; with it, ls lists the namespace instead of a registry"
	}
	cmd.Flags().StringVarP(&f.namespace, "namespace", "n", "", help)
}

func (f *containerdFlags) client() (*containerd.Client, error) {
	if f.namespace == "" {
		return nil, errors.New("--namespace is required")
	}
	c, err := containerd.New(f.address, containerd.WithDefaultNamespace(f.namespace))
	if err != nil {
		return nil, fmt.Errorf("containerd at %s: %w", f.address, err)
	}
	return c, nil
}

func newImageBuildCmd() *cobra.Command {
	var (
		out, format, tag, push, cache string
		ca                            caFlag
	)
	cmd := &cobra.Command{
		Use:   "build RECIPE|SPEC",
		Short: "Build an image from Debian packages and local files",
		Long: `Build an OCI image. RECIPE is a built-in (` + strings.Join(image.RecipeNames(), ", ") + `), SPEC a YAML or JSON file:

  name: hello
  debs: [busybox-static]              # apt-get download, dpkg-deb -x
  files:
    - {path: /bin/busybox, deb: /bin/busybox, mode: "0755"}
    - {path: /usr/bin/app, host: ./app, libs: true}   # with ldd's libraries
    - {path: /etc/app.conf, content: "port=80\n"}
    - {path: /bin/sh, symlink: busybox}
    - {path: /tmp, dir: true, mode: "1777"}
  config: {entrypoint: [/usr/bin/app], env: [A=b], workingDir: /, exposedPorts: [80/tcp]}

Layers are reproducible: the same inputs give the same digest. Downloaded
packages are kept in --cache.`,
		Example: `  barge image build busybox -o busybox.tar --tag registry.local:5000/busybox:latest
  barge image build nginx --push 198.18.0.10:5000/nginx:latest --certs ./certs`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := image.ParseFormat(format)
			if err != nil {
				return err
			}
			if out == "" && push == "" {
				return errors.New("nothing to do with the image: give -o FILE and/or --push REF")
			}
			spec, err := image.LoadSpec(args[0])
			if err != nil {
				return err
			}
			img, err := image.Build(cmd.Context(), spec, image.BuildOptions{CacheDir: cache, Logger: newQuietLogger()})
			if err != nil {
				return err
			}
			digest, err := img.Digest()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if out != "" {
				name := tag
				if name == "" {
					name = spec.Name + ":latest"
				}
				if err := image.WriteArchive(out, img, name, f); err != nil {
					return err
				}
				fmt.Fprintf(w, "Built %s %s into %s (%s archive).\n", name, digest, out, f)
			}
			if push != "" {
				caFile, err := ca.caFile()
				if err != nil {
					return err
				}
				if _, err := image.Push(cmd.Context(), img, push, caFile); err != nil {
					return err
				}
				fmt.Fprintf(w, "Pushed %s@%s.\n", push, digest)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&out, "output", "o", "", "write the image to this archive file")
	fl.StringVar(&format, "format", string(image.FormatDocker), "archive format: docker or oci")
	fl.StringVar(&tag, "tag", "", "name in the archive (default NAME:latest)")
	fl.StringVar(&push, "push", "", "also push to this reference, REGISTRY/REPO:TAG")
	fl.StringVar(&cache, "cache", image.DefaultCacheDir(), "directory for downloaded .deb files")
	ca.register(cmd)
	return cmd
}

func newImagePushCmd() *cobra.Command {
	var (
		ca    caFlag
		cache string
	)
	cmd := &cobra.Command{
		Use:   "push IMAGE REF",
		Short: "Push an image (an archive file, a recipe or a spec) to a registry the cluster CA signed",
		Example: `  barge image push busybox.tar 127.0.0.1:5000/busybox:latest --certs ./certs
  barge image push nginx 127.0.0.1:5000/nginx:latest --certs ./certs`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			caFile, err := ca.caFile()
			if err != nil {
				return err
			}
			img, _, closer, err := image.Open(cmd.Context(), args[0], image.BuildOptions{CacheDir: cache, Logger: newQuietLogger()})
			if err != nil {
				return err
			}
			defer closer.Close()
			digest, err := image.Push(cmd.Context(), img, args[1], caFile)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Pushed %s@%s.\n", args[1], digest)
			return nil
		},
	}
	ca.register(cmd)
	cmd.Flags().StringVar(&cache, "cache", image.DefaultCacheDir(), "directory for downloaded .deb files, when IMAGE is built")
	return cmd
}

func newImageSaveCmd() *cobra.Command {
	var (
		ca     caFlag
		format string
	)
	cmd := &cobra.Command{
		Use:     "save REF FILE",
		Short:   "Save an image from a registry to an archive file, for 'barge image import' on an air-gapped node",
		Example: `  barge image save 127.0.0.1:5000/nginx:latest nginx.tar --certs ./certs`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := image.ParseFormat(format)
			if err != nil {
				return err
			}
			caFile, err := ca.caFile()
			if err != nil {
				return err
			}
			img, err := image.Fetch(cmd.Context(), args[0], caFile)
			if err != nil {
				return err
			}
			if err := image.WriteArchive(args[1], img, args[0], f); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Saved %s to %s.\n", args[0], args[1])
			return nil
		},
	}
	ca.register(cmd)
	cmd.Flags().StringVar(&format, "format", string(image.FormatDocker), "archive format: docker or oci")
	return cmd
}

func newImageImportCmd() *cobra.Command {
	var cf containerdFlags
	cmd := &cobra.Command{
		Use:     "import FILE",
		Short:   "Load a docker or OCI archive into a containerd namespace and unpack it",
		Example: `  barge image import nginx.tar --namespace node1`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			defer c.Close()
			imgs, err := image.ImportFile(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			for _, i := range imgs {
				fmt.Fprintf(cmd.OutOrStdout(), "Imported %s %s into namespace %s.\n", i.Name, i.Target.Digest, cf.namespace)
			}
			return nil
		},
	}
	cf.register(cmd, true)
	return cmd
}

func newImageLsCmd() *cobra.Command {
	var (
		ca     caFlag
		cf     containerdFlags
		output string
	)
	cmd := &cobra.Command{
		Use:   "ls [REGISTRY] | --namespace NS",
		Short: "List a registry's repositories and tags, or a containerd namespace's images",
		Example: `  barge image ls 127.0.0.1:5000 --certs ./certs
  barge image ls --namespace node1 -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %q: want table or json", output)
			}
			w := cmd.OutOrStdout()
			switch {
			case cf.namespace != "" && len(args) > 0:
				return errors.New("give a REGISTRY or --namespace, not both")
			case cf.namespace != "":
				c, err := cf.client()
				if err != nil {
					return err
				}
				defer c.Close()
				imgs, err := image.List(cmd.Context(), c)
				if err != nil {
					return err
				}
				if output == "json" {
					return writeJSON(w, imgs)
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tDIGEST\tSIZE")
				for _, i := range imgs {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", i.Name, i.Digest, humanBytes(i.Size))
				}
				return tw.Flush()
			case len(args) == 1:
				caFile, err := ca.caFile()
				if err != nil {
					return err
				}
				repos, err := image.Catalog(cmd.Context(), args[0], caFile)
				if err != nil {
					return err
				}
				if output == "json" {
					return writeJSON(w, repos)
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "REPOSITORY\tTAGS")
				for _, r := range repos {
					fmt.Fprintf(tw, "%s/%s\t%s\n", args[0], r.Name, strings.Join(r.Tags, ","))
				}
				return tw.Flush()
			}
			return errors.New("give a REGISTRY (HOST:PORT) or --namespace NS")
		},
	}
	ca.register(cmd)
	cf.register(cmd, false)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newImageRegistryCmd() *cobra.Command {
	var cfg image.RegistryConfig
	cmd := &cobra.Command{
		Use:     "registry --dir DIR --addr IP:PORT --certs CERTS",
		Short:   "Run Debian's docker-registry over TLS with a certificate from the cluster CA, until SIGTERM",
		Example: `  barge image registry --dir /var/lib/barge/registry --addr 198.18.0.10:5000 --certs ./certs`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.CertsDir == "" {
				cfg.CertsDir = os.Getenv("BARGE_CERTS")
			}
			cfg.Output = cmd.ErrOrStderr()
			cfg.Logger = newQuietLogger()
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			r, err := image.StartRegistry(ctx, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Registry serving https://%s (certificate from %s, data in %s).\n", r.Addr(), r.CAFile(), cfg.Dir)
			<-ctx.Done()
			return r.Stop()
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Dir, "dir", "", "directory for config.yml, the certificate and the images")
	f.StringVar(&cfg.Addr, "addr", "127.0.0.1:5000", "IP:PORT to listen on")
	f.StringVar(&cfg.CertsDir, "certs", "", "certificate directory with the cluster CA (ca.crt and ca.key) (env BARGE_CERTS)")
	f.StringSliceVar(&cfg.Hosts, "hosts", nil, "more names and IPs for the registry's certificate")
	return cmd
}

func newImageTrustCmd() *cobra.Command {
	var (
		ca       caFlag
		hostsDir string
		mirror   string
	)
	cmd := &cobra.Command{
		Use:   "trust REGISTRY --hosts-dir DIR",
		Short: "Write containerd's hosts.toml so that pulls from REGISTRY trust the cluster CA",
		Long: `Write DIR/REGISTRY/hosts.toml (containerd's config_path layout). With
--mirror HOST, pulls of HOST's images (say docker.io/library/busybox) are
served by REGISTRY under the same repository path, and never by HOST.`,
		Example: `  barge image trust 198.18.0.10:5000 --hosts-dir /etc/containerd/certs.d --certs ./certs
  barge image trust 198.18.0.10:5000 --mirror docker.io --hosts-dir /etc/containerd/certs.d --certs ./certs`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			caFile, err := ca.caFile()
			if err != nil {
				return err
			}
			if hostsDir == "" {
				return errors.New("--hosts-dir is required")
			}
			if mirror != "" {
				err = image.WriteMirrorConfig(hostsDir, mirror, args[0], caFile)
			} else {
				err = image.WriteHostsConfig(hostsDir, args[0], caFile)
			}
			if err != nil {
				return err
			}
			host := args[0]
			if mirror != "" {
				host = mirror
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Wrote %s.\n", filepath.Join(hostsDir, host, image.HostsFile))
			return nil
		},
	}
	ca.register(cmd)
	cmd.Flags().StringVar(&hostsDir, "hosts-dir", "", "containerd's registry config_path directory")
	cmd.Flags().StringVar(&mirror, "mirror", "", "serve this upstream registry's images from REGISTRY")
	return cmd
}
