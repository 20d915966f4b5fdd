package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Format is an image archive's layout.
type Format string

const (
	// FormatDocker is `docker save`'s tarball (manifest.json, RepoTags).
	FormatDocker Format = "docker"
	// FormatOCI is an OCI image layout (oci-layout, index.json) in a tar.
	FormatOCI Format = "oci"
)

// ParseFormat checks an archive format name.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatDocker, FormatOCI:
		return f, nil
	}
	return "", fmt.Errorf("archive format %q: want docker or oci", s)
}

// Annotations that name an image in an OCI layout: containerd's import
// reads the first, other tools the second.
const (
	annotationContainerdName = "io.containerd.image.name"
	annotationRefName        = "org.opencontainers.image.ref.name"
)

// WriteArchive writes img, named ref (e.g. 127.0.0.1:5000/busybox:latest),
// to path as a tarball that `barge image import`, containerd and docker
// load can read.
func WriteArchive(path string, img v1.Image, ref string, format Format) error {
	tag, err := name.NewTag(ref, name.WeakValidation)
	if err != nil {
		return fmt.Errorf("image name %q: %w", ref, err)
	}
	switch format {
	case FormatDocker, "":
		if err := tarball.WriteToFile(path, tag, img); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	case FormatOCI:
		dir, err := os.MkdirTemp("", "barge-oci-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		lp, err := layout.Write(dir, empty.Index)
		if err != nil {
			return err
		}
		if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{
			annotationContainerdName: tag.Name(),
			annotationRefName:        tag.TagStr(),
		})); err != nil {
			return fmt.Errorf("write OCI layout: %w", err)
		}
		return tarDir(dir, path)
	}
	return fmt.Errorf("archive format %q: want docker or oci", format)
}

// tarDir packs dir into a tar file, sorted, with fixed times.
func tarDir(dir, dst string) error {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(files)
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(out)
	for _, p := range files {
		fi, err := os.Stat(p)
		if err != nil {
			out.Close()
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: Epoch(), Mode: 0o644, Typeflag: tar.TypeReg, Size: fi.Size()}
		if fi.IsDir() {
			h.Name, h.Mode, h.Typeflag, h.Size = h.Name+"/", 0o755, tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			out.Close()
			return err
		}
		if !fi.IsDir() {
			if err := copyFile(tw, p, fi.Size()); err != nil {
				out.Close()
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Archived is one image read from an archive.
type Archived struct {
	Ref   string // as the archive names it; "" if it does not
	Image v1.Image
}

// ReadArchive reads the images of a docker or OCI archive. Close the
// returned closer once done with the images (an OCI archive is unpacked
// to a temporary directory they read from).
func ReadArchive(path string) ([]Archived, io.Closer, error) {
	format, tags, err := sniffArchive(path)
	if err != nil {
		return nil, nil, err
	}
	switch format {
	case FormatDocker:
		if len(tags) == 0 {
			img, err := tarball.ImageFromPath(path, nil)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", path, err)
			}
			return []Archived{{Image: img}}, nopCloser{}, nil
		}
		var out []Archived
		for _, t := range tags {
			tag, err := name.NewTag(t, name.WeakValidation)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: tag %q: %w", path, t, err)
			}
			img, err := tarball.ImageFromPath(path, &tag)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %s: %w", path, t, err)
			}
			out = append(out, Archived{Ref: t, Image: img})
		}
		return out, nopCloser{}, nil
	default:
		dir, err := os.MkdirTemp("", "barge-oci-")
		if err != nil {
			return nil, nil, err
		}
		cl := dirCloser(dir)
		if err := untar(path, dir); err != nil {
			cl.Close()
			return nil, nil, err
		}
		idx, err := layout.ImageIndexFromPath(dir)
		if err != nil {
			cl.Close()
			return nil, nil, fmt.Errorf("%s: OCI layout: %w", path, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			cl.Close()
			return nil, nil, fmt.Errorf("%s: index.json: %w", path, err)
		}
		var out []Archived
		for _, d := range im.Manifests {
			if !d.MediaType.IsImage() {
				continue
			}
			img, err := idx.Image(d.Digest)
			if err != nil {
				cl.Close()
				return nil, nil, fmt.Errorf("%s: image %s: %w", path, d.Digest, err)
			}
			ref := d.Annotations[annotationContainerdName]
			if ref == "" {
				ref = d.Annotations[annotationRefName]
			}
			out = append(out, Archived{Ref: ref, Image: img})
		}
		if len(out) == 0 {
			cl.Close()
			return nil, nil, fmt.Errorf("%s: the OCI layout holds no image manifest", path)
		}
		return out, cl, nil
	}
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

type dirCloser string

func (d dirCloser) Close() error { return os.RemoveAll(string(d)) }

// sniffArchive tells the format by the files at the archive's top.
func sniffArchive(path string) (Format, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var sawLayout, sawIndex bool
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", nil, fmt.Errorf("%s is not an image archive (a tar file): %w", path, err)
		}
		switch strings.TrimPrefix(h.Name, "./") {
		case "manifest.json":
			var m []struct{ RepoTags []string }
			if err := json.NewDecoder(tr).Decode(&m); err != nil {
				return "", nil, fmt.Errorf("%s: manifest.json: %w", path, err)
			}
			var tags []string
			for _, e := range m {
				tags = append(tags, e.RepoTags...)
			}
			return FormatDocker, tags, nil
		case "oci-layout":
			sawLayout = true
		case "index.json":
			sawIndex = true
		}
	}
	if sawLayout && sawIndex {
		return FormatOCI, nil, nil
	}
	return "", nil, fmt.Errorf("%s is neither a docker archive (no manifest.json) nor an OCI layout (no oci-layout and index.json)", path)
}

// untar unpacks an OCI layout archive; only plain files and directories,
// and nothing outside dir.
func untar(src, dir string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		p := filepath.Join(dir, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			out, err := os.Create(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: %s: unexpected entry type %q in an OCI layout", src, h.Name, h.Typeflag)
		}
	}
}

// Open gives the image src names: a built-in recipe or spec file (built
// now), or an archive file. ref is the name the archive gives it, if any.
func Open(ctx context.Context, src string, opts BuildOptions) (img v1.Image, ref string, closer io.Closer, err error) {
	if fi, err := os.Stat(src); err == nil && fi.Mode().IsRegular() && !strings.HasSuffix(src, ".yaml") && !strings.HasSuffix(src, ".yml") && !strings.HasSuffix(src, ".json") {
		imgs, cl, err := ReadArchive(src)
		if err != nil {
			return nil, "", nil, err
		}
		if len(imgs) > 1 {
			var refs []string
			for _, a := range imgs {
				refs = append(refs, a.Ref)
			}
			cl.Close()
			return nil, "", nil, fmt.Errorf("%s holds %d images (%s): give an archive of one", src, len(imgs), strings.Join(refs, ", "))
		}
		return imgs[0].Image, imgs[0].Ref, cl, nil
	}
	spec, err := LoadSpec(src)
	if err != nil {
		return nil, "", nil, err
	}
	img, err = Build(ctx, spec, opts)
	if err != nil {
		return nil, "", nil, err
	}
	return img, "", nopCloser{}, nil
}
