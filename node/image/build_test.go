package image

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// requireDebTools: building from Debian packages needs apt-get and
// dpkg-deb, which every Debian machine has.
func requireDebTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"apt-get", "dpkg-deb", "ldd"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("BARGE_REQUIRE_ROOT") == "1" {
				t.Fatalf("%s not found", tool)
			}
			t.Skipf("%s not found: image builds need a Debian machine", tool)
		}
	}
}

func buildOpts(t *testing.T) BuildOptions {
	return BuildOptions{CacheDir: DefaultCacheDir(), Logger: nil}
}

// layerFiles lists the single layer's entries by path.
func layerFiles(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out["/"+strings.TrimSuffix(h.Name, "/")] = h
	}
}

func TestImageBuildBusybox(t *testing.T) {
	requireDebTools(t)
	spec, _ := Recipe("busybox")
	img, err := Build(context.Background(), spec, buildOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	files := layerFiles(t, img)
	if h := files["/bin/busybox"]; h == nil || h.Typeflag != tar.TypeReg || h.Mode&0o111 == 0 {
		t.Fatalf("/bin/busybox: %+v", h)
	}
	for _, applet := range []string{"sh", "ls", "echo", "wget", "cat"} {
		if h := files["/bin/"+applet]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
			t.Errorf("/bin/%s: %+v", applet, h)
		}
	}
	if h := files["/tmp"]; h == nil || h.Typeflag != tar.TypeDir || h.Mode != 0o1777 {
		t.Errorf("/tmp: %+v", h)
	}
	for _, p := range []string{"/etc/passwd", "/etc/group"} {
		if files[p] == nil {
			t.Errorf("%s missing", p)
		}
	}
	for p, h := range files {
		if !h.ModTime.Equal(Epoch()) || h.Uname != "" {
			t.Errorf("%s: time %v user %q: not reproducible", p, h.ModTime, h.Uname)
			break
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cf.Config.Cmd, []string{"/bin/sh"}) || cf.OS != "linux" || !strings.HasPrefix(cf.Config.Labels["dev.barge.debs"], "busybox-static=") {
		t.Errorf("config %+v", cf.Config)
	}

	// The same inputs give the same image.
	again, err := Build(context.Background(), spec, buildOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Fatalf("rebuild changed the digest: %s then %s", d1, d2)
	}
}

func TestImageBuildNginx(t *testing.T) {
	requireDebTools(t)
	spec, _ := Recipe("nginx")
	img, err := Build(context.Background(), spec, buildOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	files := layerFiles(t, img)
	libs, _, err := func() ([]string, []string, error) {
		out, err := exec.Command("ldd", filepath.Join("/usr/sbin/nginx")).Output()
		if err != nil {
			// nginx is not installed here: read the list from the image.
			return nil, nil, nil
		}
		l, m := parseLdd(out)
		return l, m, nil
	}()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range append(libs, "/usr/sbin/nginx", "/etc/nginx/nginx.conf", "/etc/nginx/mime.types", "/usr/share/nginx/html/index.html") {
		if files[want] == nil {
			t.Errorf("%s missing", want)
		}
	}
	var haveLibc, haveLoader bool
	for p := range files {
		haveLibc = haveLibc || strings.HasSuffix(p, "/libc.so.6")
		haveLoader = haveLoader || strings.Contains(p, "ld-linux")
	}
	if !haveLibc || !haveLoader {
		t.Errorf("libc %v, dynamic loader %v", haveLibc, haveLoader)
	}
	if h := files["/var/log/nginx/error.log"]; h == nil || h.Linkname != "/dev/stderr" {
		t.Errorf("error.log: %+v", h)
	}
	if h := files["/var/lib/nginx/body"]; h == nil || h.Uid != 33 {
		t.Errorf("/var/lib/nginx/body: %+v", h)
	}
	cf, _ := img.ConfigFile()
	if _, ok := cf.Config.ExposedPorts["80/tcp"]; !ok || cf.Config.StopSignal != "SIGQUIT" {
		t.Errorf("config %+v", cf.Config)
	}
}

func TestImageSpecErrors(t *testing.T) {
	for _, tc := range []struct{ name, spec, want string }{
		{"unknown field", "name: x\nfiles: []\ncmd: [sh]\n", `unknown field "cmd"`},
		{"no name", "files: []\n", "name is empty"},
		{"relative path", "name: x\nfiles: [{path: etc/x, content: a}]\n", "absolute and clean"},
		{"unclean path", "name: x\nfiles: [{path: /etc/../x, content: a}]\n", "absolute and clean"},
		{"duplicate", "name: x\nfiles: [{path: /a, content: a}, {path: /a, dir: true}]\n", "also files[0]"},
		{"two kinds", "name: x\nfiles: [{path: /a, content: a, symlink: b}]\n", "only one of"},
		{"deb without debs", "name: x\nfiles: [{path: /a, deb: /a}]\n", "lists no debs"},
		{"libs of content", "name: x\nfiles: [{path: /a, content: a, libs: true}]\n", "libs needs"},
		{"bad mode", "name: x\nfiles: [{path: /a, content: a, mode: '999'}]\n", "want octal"},
		{"bad port", "name: x\nfiles: []\nconfig: {exposedPorts: [http]}\n", `exposed port "http"`},
		{"bad proto", "name: x\nfiles: []\nconfig: {exposedPorts: [80/icmp]}\n", `protocol "icmp"`},
		{"bad env", "name: x\nfiles: []\nconfig: {env: [PATH]}\n", "NAME=VALUE"},
		{"not yaml", "{{", "image spec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSpec([]byte(tc.spec))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := LoadSpec("redis"); err == nil || !strings.Contains(err.Error(), "busybox, nginx") {
		t.Fatalf("unknown recipe: %v", err)
	}
}

func TestImageBuildFromSpecFile(t *testing.T) {
	dir := t.TempDir()
	host := filepath.Join(dir, "hello.txt")
	os.WriteFile(host, []byte("hi\n"), 0o640)
	spec := "name: tiny\nfiles:\n  - {path: /srv/hello.txt, host: " + host + "}\n  - {path: /srv/link, symlink: hello.txt}\n" +
		"config: {entrypoint: [/bin/false], env: [A=b], workingDir: /srv, exposedPorts: ['53/udp', '8080']}\n"
	p := filepath.Join(dir, "tiny.yaml")
	os.WriteFile(p, []byte(spec), 0o644)
	s, err := LoadSpec(p)
	if err != nil {
		t.Fatal(err)
	}
	img, err := Build(context.Background(), s, BuildOptions{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	files := layerFiles(t, img)
	if h := files["/srv/hello.txt"]; h == nil || h.Mode != 0o640 || h.Size != 3 {
		t.Errorf("hello.txt %+v", h)
	}
	if h := files["/srv"]; h == nil || h.Typeflag != tar.TypeDir {
		t.Errorf("parent /srv not created: %+v", h)
	}
	cf, _ := img.ConfigFile()
	if _, ok := cf.Config.ExposedPorts["8080/tcp"]; !ok || cf.Config.WorkingDir != "/srv" {
		t.Errorf("config %+v", cf.Config)
	}

	// A host file that is gone is reported with the entry.
	os.Remove(host)
	if _, err := Build(context.Background(), s, BuildOptions{CacheDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "files[0] /srv/hello.txt") {
		t.Fatalf("missing host file: %v", err)
	}
	// A file under a non-directory cannot be unpacked.
	bad := &Spec{Name: "bad", Files: []File{{Path: "/a", Content: "x"}, {Path: "/a/b", Dir: true}}}
	if _, err := Build(context.Background(), bad, BuildOptions{}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("file under a file: %v", err)
	}
}

func TestImageParseLdd(t *testing.T) {
	out := []byte(`	linux-vdso.so.1 (0x00007ffd)
	libpcre2-8.so.0 => /lib/x86_64-linux-gnu/libpcre2-8.so.0 (0x00007f67)
	libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f67)
	libgone.so.3 => not found
	/lib64/ld-linux-x86-64.so.2 (0x00007f67)
`)
	libs, missing := parseLdd(out)
	if !slices.Equal(libs, []string{"/lib/x86_64-linux-gnu/libpcre2-8.so.0", "/lib/x86_64-linux-gnu/libz.so.1", "/lib64/ld-linux-x86-64.so.2"}) {
		t.Errorf("libs %v", libs)
	}
	if !slices.Equal(missing, []string{"libgone.so.3"}) {
		t.Errorf("missing %v", missing)
	}
}

func tinyImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := Build(context.Background(), &Spec{Name: "tiny", Files: []File{{Path: "/hello", Content: "hello\n"}},
		Config: Config{Cmd: []string{"/hello"}}}, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestImageArchiveRoundTrip(t *testing.T) {
	img := tinyImage(t)
	want, _ := img.Digest()
	dir := t.TempDir()
	for _, format := range []Format{FormatDocker, FormatOCI} {
		p := filepath.Join(dir, string(format)+".tar")
		if err := WriteArchive(p, img, "127.0.0.1:5000/tiny:v1", format); err != nil {
			t.Fatal(err)
		}
		got, cl, err := ReadArchive(p)
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if len(got) != 1 || got[0].Ref != "127.0.0.1:5000/tiny:v1" {
			t.Fatalf("%s: %+v", format, got)
		}
		if d, _ := got[0].Image.Digest(); format == FormatOCI && d != want {
			// docker archives keep the config and layers, not the manifest
			t.Errorf("%s: digest %s, want %s", format, d, want)
		}
		cfgWant, _ := img.ConfigName()
		if c, _ := got[0].Image.ConfigName(); c != cfgWant {
			t.Errorf("%s: config %s, want %s", format, c, cfgWant)
		}
		cl.Close()
		if _, _, cl, err := Open(context.Background(), p, BuildOptions{}); err != nil {
			t.Errorf("open %s: %v", p, err)
		} else {
			cl.Close()
		}
	}
	junk := filepath.Join(dir, "junk.tar")
	os.WriteFile(junk, []byte("not a tar at all, just text that is long enough to be read as a header block..."), 0o644)
	if _, _, err := ReadArchive(junk); err == nil || !strings.Contains(err.Error(), "junk.tar") {
		t.Fatalf("junk: %v", err)
	}
	if err := WriteArchive(filepath.Join(dir, "x.tar"), img, "Not A Name", FormatDocker); err == nil {
		t.Fatal("wrote an archive under an invalid name")
	}
}
