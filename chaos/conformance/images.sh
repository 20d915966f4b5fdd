#!/bin/sh
# The e2e suite's images for a lab with real agents: built with `barge
# image` from the pinned agnhost (bin/agnhost) and Debian packages, pushed
# to the lab registry under the repository paths of registry.k8s.io, and
# served in place of registry.k8s.io through containerd's hosts.toml, so
# the specs' pods pull their usual names and nothing leaves the machine.
#
#   images.sh LAB_DIR      (run from the repository root, as root)
set -eu

BARGE=${BARGE:-bin/barge}
LAB=$1
REG=$(sed -n 's/^ *"registry": *"\([^"]*\)".*/\1/p' "$LAB/lab.json" | head -n 1)
[ -n "$REG" ] || { echo "images.sh: $LAB/lab.json names no registry (lab up with --nodes)" >&2; exit 1; }
CERTS="$LAB/certs"
HERE=chaos/conformance/images

# SOURCE REPOSITORY:TAG... : one build, pushed under every name. The tags
# are those of k8s.io/kubernetes/test/utils/image/manifest.go at the
# pinned version; nginx is barge's own recipe.
push() {
	src=$1
	shift
	for ref in "$@"; do
		"$BARGE" image push "$src" "$REG/$ref" --certs "$CERTS" >/dev/null
		echo "   $ref"
	done
}
echo "== e2e images into $REG (served as registry.k8s.io)"
# glibc-dns-testing is Debian with dnsutils upstream: agnhost's image
# here already has glibc's getent and dig.
push "$HERE/agnhost.yaml" e2e-test-images/agnhost:2.66.1 e2e-test-images/agnhost:2.55 \
	e2e-test-images/glibc-dns-testing:2.1.1
push "$HERE/busybox.yaml" e2e-test-images/busybox:1.37.0-2
push nginx e2e-test-images/nginx:1.27.0-2 e2e-test-images/nginx:1.28.0-2
push "$HERE/pause.yaml" pause:3.10.2
push "$HERE/nonewprivs.yaml" e2e-test-images/nonewprivs:1.4
"$BARGE" image trust "$REG" --mirror registry.k8s.io --hosts-dir "$LAB/containerd/hosts" --certs "$CERTS" >/dev/null
