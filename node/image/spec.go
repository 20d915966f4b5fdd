package image

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Spec describes an image built from local files: Debian packages
// fetched with apt-get download and unpacked with dpkg-deb, files of this
// machine, and files written inline. One layer holds it all.
//
//	name: nginx
//	debs: [nginx, nginx-common]
//	files:
//	  - {path: /usr/sbin/nginx, deb: /usr/sbin/nginx, libs: true}
//	  - {path: /etc/nginx/nginx.conf, content: "..."}
//	  - {path: /bin/sh, symlink: busybox}
//	  - {path: /tmp, dir: true, mode: "1777"}
//	config: {cmd: [/usr/sbin/nginx], exposedPorts: [80/tcp]}
type Spec struct {
	Name string `json:"name"`
	// Debs are Debian package names whose files the deb: sources read.
	Debs  []string `json:"debs,omitempty"`
	Files []File   `json:"files"`
	// BusyboxApplets, if set, is a path in the image (say /bin/busybox)
	// whose binary lists its applets (`busybox --list`); each becomes a
	// symlink beside it unless a file of that name is in Files.
	BusyboxApplets string `json:"busyboxApplets,omitempty"`
	Config         Config `json:"config"`
}

// File is one entry of the image's filesystem. Exactly one of Host, Deb,
// Content, Symlink and Dir says what it is.
type File struct {
	Path    string `json:"path"`
	Host    string `json:"host,omitempty"`    // a file of this machine
	Deb     string `json:"deb,omitempty"`     // a file of the unpacked Debs
	Content string `json:"content,omitempty"` // written as given
	Symlink string `json:"symlink,omitempty"` // link target
	Dir     bool   `json:"dir,omitempty"`
	// Libs adds every shared library ldd reports for the file, at the
	// path ldd gives, and the dynamic loader.
	Libs bool `json:"libs,omitempty"`
	// Mode in octal ("0755", "1777"); default 0644 for content, the
	// source's mode for copies, 0755 for directories.
	Mode string `json:"mode,omitempty"`
	UID  int    `json:"uid,omitempty"`
	GID  int    `json:"gid,omitempty"`
}

// Config is the image's runtime configuration.
type Config struct {
	Entrypoint   []string          `json:"entrypoint,omitempty"`
	Cmd          []string          `json:"cmd,omitempty"`
	Env          []string          `json:"env,omitempty"`
	WorkingDir   string            `json:"workingDir,omitempty"`
	User         string            `json:"user,omitempty"`
	ExposedPorts []string          `json:"exposedPorts,omitempty"` // "80/tcp"
	StopSignal   string            `json:"stopSignal,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
}

// ParseSpec reads a spec in YAML or JSON; unknown fields are an error,
// so that a typo is not silently ignored.
func ParseSpec(data []byte) (*Spec, error) {
	var s Spec
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		return nil, fmt.Errorf("image spec: %w", err)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// LoadSpec returns the built-in recipe of that name, or reads a spec file.
func LoadSpec(nameOrPath string) (*Spec, error) {
	if s, ok := Recipe(nameOrPath); ok {
		return s, nil
	}
	data, err := os.ReadFile(nameOrPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !strings.ContainsAny(nameOrPath, "/.") {
			return nil, fmt.Errorf("image spec %q: neither a built-in recipe (%s) nor a file", nameOrPath, strings.Join(RecipeNames(), ", "))
		}
		return nil, fmt.Errorf("image spec: %w", err)
	}
	s, err := ParseSpec(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", nameOrPath, err)
	}
	return s, nil
}

// Validate reports every problem of the spec, naming the file entry.
func (s *Spec) Validate() error {
	var errs []error
	if s.Name == "" {
		errs = append(errs, errors.New("image spec: name is empty"))
	}
	seen := map[string]int{}
	for i, f := range s.Files {
		where := fmt.Sprintf("image spec %s: files[%d] %q", s.Name, i, f.Path)
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
			errs = append(errs, fmt.Errorf("%s: path must be absolute and clean, and not /", where))
		}
		if j, dup := seen[f.Path]; dup {
			errs = append(errs, fmt.Errorf("%s: also files[%d]", where, j))
		}
		seen[f.Path] = i
		kinds := 0
		for _, set := range []bool{f.Host != "", f.Deb != "", f.Content != "", f.Symlink != "", f.Dir} {
			if set {
				kinds++
			}
		}
		if kinds > 1 {
			errs = append(errs, fmt.Errorf("%s: give only one of host, deb, content, symlink and dir", where))
		}
		if f.Deb != "" && len(s.Debs) == 0 {
			errs = append(errs, fmt.Errorf("%s: deb source but the spec lists no debs", where))
		}
		if f.Libs && f.Host == "" && f.Deb == "" {
			errs = append(errs, fmt.Errorf("%s: libs needs a host or deb binary", where))
		}
		if f.Mode != "" {
			if _, err := parseMode(f.Mode); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
			}
		}
		if f.UID < 0 || f.GID < 0 {
			errs = append(errs, fmt.Errorf("%s: negative uid or gid", where))
		}
	}
	for _, p := range s.Config.ExposedPorts {
		if _, err := parsePort(p); err != nil {
			errs = append(errs, fmt.Errorf("image spec %s: exposed port %q: %w", s.Name, p, err))
		}
	}
	for _, e := range s.Config.Env {
		if !strings.Contains(e, "=") {
			errs = append(errs, fmt.Errorf("image spec %s: env %q: want NAME=VALUE", s.Name, e))
		}
	}
	return errors.Join(errs...)
}

func parseMode(s string) (int64, error) {
	m, err := strconv.ParseInt(s, 8, 32)
	if err != nil || m < 0 || m > 0o7777 {
		return 0, fmt.Errorf("mode %q: want octal such as 0755", s)
	}
	return m, nil
}

func parsePort(s string) (string, error) {
	num, proto, ok := strings.Cut(s, "/")
	if !ok {
		proto = "tcp"
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > 65535 {
		return "", errors.New("want PORT/PROTO such as 80/tcp")
	}
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return "", fmt.Errorf("protocol %q: want tcp, udp or sctp", proto)
	}
	return strconv.Itoa(n) + "/" + proto, nil
}

// DefaultPath is the PATH of built-in images.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// baseFiles are what every built-in image has: users, groups, /tmp.
func baseFiles(extraPasswd, extraGroup string) []File {
	return []File{
		{Path: "/etc/passwd", Content: "root:x:0:0:root:/root:/bin/sh\n" + extraPasswd + "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"},
		{Path: "/etc/group", Content: "root:x:0:\n" + extraGroup + "nogroup:x:65534:\n"},
		{Path: "/etc/nsswitch.conf", Content: "passwd: files\ngroup: files\nhosts: files dns\n"},
		{Path: "/root", Dir: true, Mode: "0700"},
		{Path: "/tmp", Dir: true, Mode: "1777"},
	}
}

// RecipeNames lists the built-in recipes.
func RecipeNames() []string { return []string{"busybox", "nginx"} }

// Recipe returns a built-in spec: "busybox" (Debian's busybox-static,
// with /bin/sh and every applet linked) or "nginx" (Debian's nginx with
// its shared libraries, serving a page on port 80 and logging to
// stdout/stderr).
func Recipe(name string) (*Spec, bool) {
	switch name {
	case "busybox":
		files := append(baseFiles("", ""),
			File{Path: "/bin/busybox", Deb: "/bin/busybox", Mode: "0755"},
		)
		return &Spec{
			Name:           "busybox",
			Debs:           []string{"busybox-static"},
			Files:          files,
			BusyboxApplets: "/bin/busybox",
			Config: Config{
				Cmd:    []string{"/bin/sh"},
				Env:    []string{DefaultPath},
				Labels: map[string]string{"org.opencontainers.image.title": "busybox", "dev.barge.recipe": "busybox"},
			},
		}, true
	case "nginx":
		files := append(baseFiles("www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n", "www-data:x:33:\n"),
			File{Path: "/usr/sbin/nginx", Deb: "/usr/sbin/nginx", Libs: true, Mode: "0755"},
			File{Path: "/etc/nginx/mime.types", Deb: "/etc/nginx/mime.types"},
			File{Path: "/etc/nginx/nginx.conf", Content: nginxConf},
			File{Path: "/usr/share/nginx/html/index.html", Content: nginxIndex},
			// nginx opens its compiled-in error log before it reads the
			// configuration; pointing it at stderr keeps the log where
			// the container runtime collects it, as the Docker image does.
			File{Path: "/var/log/nginx/error.log", Symlink: "/dev/stderr"},
			File{Path: "/var/log/nginx/access.log", Symlink: "/dev/stdout"},
			File{Path: "/var/lib/nginx", Dir: true},
			File{Path: "/var/lib/nginx/body", Dir: true, Mode: "0700", UID: 33, GID: 33},
			File{Path: "/var/lib/nginx/proxy", Dir: true, Mode: "0700", UID: 33, GID: 33},
			File{Path: "/var/lib/nginx/fastcgi", Dir: true, Mode: "0700", UID: 33, GID: 33},
			File{Path: "/var/lib/nginx/uwsgi", Dir: true, Mode: "0700", UID: 33, GID: 33},
			File{Path: "/var/lib/nginx/scgi", Dir: true, Mode: "0700", UID: 33, GID: 33},
			File{Path: "/run", Dir: true},
		)
		return &Spec{
			Name:  "nginx",
			Debs:  []string{"nginx", "nginx-common"},
			Files: files,
			Config: Config{
				Cmd:          []string{"/usr/sbin/nginx"},
				Env:          []string{DefaultPath},
				WorkingDir:   "/",
				ExposedPorts: []string{"80/tcp"},
				StopSignal:   "SIGQUIT",
				Labels:       map[string]string{"org.opencontainers.image.title": "nginx", "dev.barge.recipe": "nginx"},
			},
		}, true
	}
	return nil, false
}

// NginxPage is the page the nginx recipe serves at /.
const NginxPage = "barge nginx: it works\n"

const nginxIndex = NginxPage

const nginxConf = `# barge's nginx recipe: one server on port 80, logs to stdout/stderr.
user www-data;
worker_processes 1;
pid /run/nginx.pid;
daemon off;
error_log stderr notice;

events {
    worker_connections 256;
}

http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /dev/stdout;
    sendfile on;
    keepalive_timeout 65;

    server {
        listen 80 default_server;
        root /usr/share/nginx/html;
        index index.html;
        location / {
            try_files $uri $uri/ =404;
        }
    }
}
`
