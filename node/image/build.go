package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Epoch is the time of every file and of the image itself: with the same
// inputs a rebuild gives the same digest.
func Epoch() time.Time { return time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) }

// BuildOptions configures Build.
type BuildOptions struct {
	// CacheDir keeps downloaded .deb files; a package found there is not
	// downloaded again, so rebuilds need no network and give the same
	// digest. Default: the user cache directory's barge/debs.
	CacheDir string
	Logger   *slog.Logger
}

// DefaultCacheDir is where Build keeps .deb files by default.
func DefaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "barge", "debs")
	}
	return filepath.Join(os.TempDir(), "barge-debs")
}

// entry is one file of the layer.
type entry struct {
	hdr  tar.Header
	src  string // file on disk to copy, for regular files without data
	data []byte
}

// Build makes the image spec describes: one deterministic layer, OCI
// media types, the config's entrypoint, command, environment, ports.
func Build(ctx context.Context, spec *Spec, opts BuildOptions) (v1.Image, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if opts.CacheDir == "" {
		opts.CacheDir = DefaultCacheDir()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	b := &builder{spec: spec, opts: opts, entries: map[string]*entry{}, sources: map[string]string{}}
	if len(spec.Debs) > 0 {
		stage, err := os.MkdirTemp("", "barge-image-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(stage)
		b.stage = stage
		versions, err := fetchDebs(ctx, spec.Debs, opts.CacheDir, stage, opts.Logger)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", spec.Name, err)
		}
		b.debVersions = versions
	}
	for i, f := range spec.Files {
		if err := b.add(ctx, f); err != nil {
			return nil, fmt.Errorf("image %s: files[%d] %s: %w", spec.Name, i, f.Path, err)
		}
	}
	if spec.BusyboxApplets != "" {
		if err := b.addApplets(ctx, spec.BusyboxApplets); err != nil {
			return nil, fmt.Errorf("image %s: busybox applets: %w", spec.Name, err)
		}
	}
	layerTar, err := b.tar()
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", spec.Name, err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("image %s: layer: %w", spec.Name, err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer,
		History: v1.History{Created: v1.Time{Time: Epoch()}, CreatedBy: "barge image build " + spec.Name}})
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", spec.Name, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = runtime.GOARCH, "linux"
	cf.Created = v1.Time{Time: Epoch()}
	cf.Config = b.config()
	return mutate.ConfigFile(img, cf)
}

type builder struct {
	spec        *Spec
	opts        BuildOptions
	stage       string
	debVersions []string
	entries     map[string]*entry
	sources     map[string]string // image path → file on disk
}

func (b *builder) config() v1.Config {
	c := b.spec.Config
	out := v1.Config{
		Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, WorkingDir: c.WorkingDir,
		User: c.User, StopSignal: c.StopSignal,
	}
	if len(c.ExposedPorts) > 0 {
		out.ExposedPorts = map[string]struct{}{}
		for _, p := range c.ExposedPorts {
			n, _ := parsePort(p)
			out.ExposedPorts[n] = struct{}{}
		}
	}
	labels := map[string]string{}
	for k, v := range c.Labels {
		labels[k] = v
	}
	if len(b.debVersions) > 0 {
		labels["dev.barge.debs"] = strings.Join(b.debVersions, ",")
	}
	if len(labels) > 0 {
		out.Labels = labels
	}
	return out
}

func (b *builder) put(e *entry) {
	e.hdr.Name = strings.TrimPrefix(e.hdr.Name, "/")
	e.hdr.ModTime = Epoch()
	e.hdr.Format = tar.FormatPAX
	b.entries["/"+strings.TrimSuffix(e.hdr.Name, "/")] = e
}

func (b *builder) add(ctx context.Context, f File) error {
	mode := int64(-1)
	if f.Mode != "" {
		mode, _ = parseMode(f.Mode)
	}
	pick := func(def int64) int64 {
		if mode >= 0 {
			return mode
		}
		return def
	}
	h := tar.Header{Name: f.Path, Uid: f.UID, Gid: f.GID}
	switch {
	case f.Dir:
		h.Typeflag, h.Mode, h.Name = tar.TypeDir, pick(0o755), f.Path+"/"
		b.put(&entry{hdr: h})
	case f.Symlink != "":
		h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, f.Symlink, 0o777
		b.put(&entry{hdr: h})
	case f.Host != "" || f.Deb != "":
		src := f.Host
		if f.Deb != "" {
			src = filepath.Join(b.stage, filepath.Clean("/"+f.Deb))
		}
		fi, err := os.Lstat(src)
		if err != nil {
			if f.Deb != "" && errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%s is in none of the packages %v", f.Deb, b.spec.Debs)
			}
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 && f.Deb != "" {
			target, err := os.Readlink(src)
			if err != nil {
				return err
			}
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, target, 0o777
			b.put(&entry{hdr: h})
			return nil
		}
		if fi, err = os.Stat(src); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", src)
		}
		h.Typeflag, h.Mode, h.Size = tar.TypeReg, pick(int64(fi.Mode().Perm())), fi.Size()
		b.put(&entry{hdr: h, src: src})
		b.sources[f.Path] = src
		if f.Libs {
			return b.addLibs(ctx, src)
		}
	default:
		h.Typeflag, h.Mode, h.Size = tar.TypeReg, pick(0o644), int64(len(f.Content))
		b.put(&entry{hdr: h, data: []byte(f.Content)})
	}
	return nil
}

// addLibs adds the shared libraries of bin, as ldd finds them on this
// machine, each at the path ldd reports.
func (b *builder) addLibs(ctx context.Context, bin string) error {
	libs, err := sharedLibs(ctx, bin)
	if err != nil {
		return err
	}
	for _, lib := range libs {
		if _, ok := b.entries[lib]; ok {
			continue
		}
		fi, err := os.Stat(lib)
		if err != nil {
			return fmt.Errorf("library %s: %w", lib, err)
		}
		b.put(&entry{hdr: tar.Header{Name: lib, Typeflag: tar.TypeReg, Mode: int64(fi.Mode().Perm()), Size: fi.Size()}, src: lib})
	}
	return nil
}

// sharedLibs runs ldd. A static binary has none; a library ldd cannot
// find is an error that names it.
func sharedLibs(ctx context.Context, bin string) ([]string, error) {
	ldd, err := exec.LookPath("ldd")
	if err != nil {
		return nil, errors.New("ldd not found: it comes with Debian's libc-bin")
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, ldd, bin)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if strings.Contains(string(out)+stderr.String(), "not a dynamic executable") {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %v: %s", bin, err, strings.TrimSpace(stderr.String()))
	}
	libs, missing := parseLdd(out)
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s needs %s, not found on this machine: install the Debian packages that hold them", bin, strings.Join(missing, ", "))
	}
	return libs, nil
}

// parseLdd reads ldd's output: "libz.so.1 => /lib/.../libz.so.1 (0x..)",
// "/lib64/ld-linux-x86-64.so.2 (0x..)", "linux-vdso.so.1 (0x..)" (in the
// kernel, no file) and "libfoo.so => not found".
func parseLdd(out []byte) (libs, missing []string) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if name, rest, ok := strings.Cut(line, " => "); ok {
			if strings.HasPrefix(rest, "not found") {
				missing = append(missing, name)
				continue
			}
			if f := strings.Fields(rest); len(f) > 0 && path.IsAbs(f[0]) {
				libs = append(libs, f[0])
			}
			continue
		}
		if f := strings.Fields(line); len(f) > 0 && path.IsAbs(f[0]) {
			libs = append(libs, f[0])
		}
	}
	return libs, missing
}

// addApplets links every applet of the busybox at image path bin.
func (b *builder) addApplets(ctx context.Context, bin string) error {
	src, ok := b.sources[bin]
	if !ok {
		return fmt.Errorf("%s is not a file of the spec", bin)
	}
	out, err := exec.CommandContext(ctx, src, "--list").Output()
	if err != nil {
		return fmt.Errorf("%s --list: %w", src, err)
	}
	dir := path.Dir(bin)
	for _, applet := range strings.Fields(string(out)) {
		if strings.ContainsAny(applet, "/\x00") || applet == path.Base(bin) {
			continue
		}
		p := path.Join(dir, applet)
		if _, exists := b.entries[p]; exists {
			continue
		}
		b.put(&entry{hdr: tar.Header{Name: p, Typeflag: tar.TypeSymlink, Linkname: path.Base(bin), Mode: 0o777}})
	}
	return nil
}

// tar writes the entries sorted by path, parents first, each missing
// parent as a root-owned 0755 directory.
func (b *builder) tar() ([]byte, error) {
	for p := range b.entries {
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if _, ok := b.entries[d]; !ok {
				b.put(&entry{hdr: tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755}})
			}
		}
	}
	paths := make([]string, 0, len(b.entries))
	for p := range b.entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		e := b.entries[p]
		if e.hdr.Typeflag == tar.TypeDir {
			// A directory's parents are its ancestors: a regular file
			// there would make the layer unpackable.
			if parent, ok := b.entries[path.Dir(p)]; ok && parent.hdr.Typeflag != tar.TypeDir {
				return nil, fmt.Errorf("%s is inside %s, which is not a directory", p, path.Dir(p))
			}
		}
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		switch {
		case e.data != nil:
			if _, err := tw.Write(e.data); err != nil {
				return nil, err
			}
		case e.src != "":
			if err := copyFile(tw, e.src, e.hdr.Size); err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func copyFile(w io.Writer, src string, size int64) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(w, io.LimitReader(f, size))
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%s changed while it was read", src)
	}
	return nil
}

// fetchDebs puts each package's .deb in cacheDir (apt-get download,
// unless one is cached) and unpacks them all into stage. It returns
// "name=version" of each.
func fetchDebs(ctx context.Context, pkgs []string, cacheDir, stage string, logger *slog.Logger) ([]string, error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, err
	}
	var versions []string
	for _, pkg := range pkgs {
		deb, err := cachedDeb(ctx, pkg, cacheDir, logger)
		if err != nil {
			return nil, err
		}
		out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, stage).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("dpkg-deb -x %s: %v: %s", deb, err, strings.TrimSpace(string(out)))
		}
		v, err := exec.CommandContext(ctx, "dpkg-deb", "-f", deb, "Version").Output()
		if err != nil {
			return nil, fmt.Errorf("dpkg-deb -f %s: %w", deb, err)
		}
		versions = append(versions, pkg+"="+strings.TrimSpace(string(v)))
	}
	return versions, nil
}

func cachedDeb(ctx context.Context, pkg, cacheDir string, logger *slog.Logger) (string, error) {
	if strings.ContainsAny(pkg, "/ _*?[") || pkg == "" {
		return "", fmt.Errorf("package name %q is not a Debian package name", pkg)
	}
	find := func() string {
		m, _ := filepath.Glob(filepath.Join(cacheDir, pkg+"_*.deb"))
		sort.Strings(m)
		if len(m) == 0 {
			return ""
		}
		return m[len(m)-1]
	}
	if f := find(); f != "" {
		return f, nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", fmt.Errorf("package %s is not in %s and apt-get is not installed to download it", pkg, cacheDir)
	}
	download := func() ([]byte, error) {
		cmd := exec.CommandContext(ctx, "apt-get", "download", "-q", pkg)
		cmd.Dir = cacheDir
		return cmd.CombinedOutput()
	}
	logger.Info("downloading Debian package", "package", pkg, "cache", cacheDir)
	out, err := download()
	if err != nil && strings.Contains(string(out), "Unable to locate package") {
		// A fresh machine has no package lists yet.
		if uout, uerr := exec.CommandContext(ctx, "apt-get", "update", "-qq").CombinedOutput(); uerr != nil {
			return "", fmt.Errorf("apt-get update: %v: %s", uerr, strings.TrimSpace(string(uout)))
		}
		out, err = download()
	}
	if err != nil {
		return "", fmt.Errorf("apt-get download %s: %v: %s", pkg, err, strings.TrimSpace(string(out)))
	}
	if f := find(); f != "" {
		return f, nil
	}
	return "", fmt.Errorf("apt-get download %s left no %s_*.deb in %s", pkg, pkg, cacheDir)
}
