package defaults

import (
	"regexp"
	"strings"
)

// referenceRegexp is the docker reference grammar (github.com/distribution/reference)
// that kubelet and Kubernetes' defaulting use to split an image into name, tag
// and digest. A compiled *regexp.Regexp is immutable and safe for concurrent
// use, so sharing one is not shared mutable state.
var referenceRegexp = regexp.MustCompile(`^(` +
	// optional registry host (DNS name or [IPv6]) with optional port
	`(?:(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?/)?` +
	// path components
	`[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*` +
	`)(?::([\w][\w.-]{0,127}))?(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$`)

// identifierRegexp matches a bare 64-hex image ID, which the reference parser
// refuses as a repository name.
var identifierRegexp = regexp.MustCompile(`^[a-f0-9]{64}$`)

// imageTag returns the tag Kubernetes' parsers.ParseImageName would report:
// the explicit tag, "latest" when neither tag nor digest is given, and "" for
// a digest-only reference or an image it cannot parse. The pull policy default
// ("Always" only for latest) hinges on exactly these cases.
func imageTag(image string) string {
	if identifierRegexp.MatchString(image) {
		return ""
	}
	// Docker Hub names gain "docker.io/" (and "library/") before parsing; only
	// the lower-case check on the repository part needs that split.
	remainder := image
	if i := strings.IndexRune(image, '/'); i != -1 {
		host := image[:i]
		if strings.ContainsAny(host, ".:") || host == "localhost" || strings.ToLower(host) != host {
			remainder = image[i+1:]
		}
	}
	repo := remainder
	if i := strings.IndexRune(remainder, ':'); i != -1 {
		repo = remainder[:i]
	}
	if strings.ToLower(repo) != repo {
		return ""
	}
	m := referenceRegexp.FindStringSubmatch(image)
	if m == nil || len(m[1]) > 255 {
		return ""
	}
	tag, digest := m[2], m[3]
	if tag == "" && digest == "" {
		return "latest"
	}
	return tag
}
