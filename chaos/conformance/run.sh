#!/bin/sh
# make conformance: a lab of three barge servers (network namespaces, root),
# nodes for the suite to schedule on, then the [Conformance] specs through
# ginkgo in parallel; the counts go into docs/conformance.md.
#
#   CONFORMANCE_NODES   nodes in the lab (default 3)
#   CONFORMANCE_FOCUS   regexp of specs (default: all [Conformance])
#   CONFORMANCE_SKIP    regexp of specs to leave out
#   CONFORMANCE_PROCS   ginkgo processes (default 4)
#   CONFORMANCE_TIMEOUT bound on the suite (default 3h; the report is kept)
#   CONFORMANCE_NODEKIND  agent (real 'barge agent' nodes: containerd,
#                         the lab's registry; the default) or hollow
#                         (simulated, no containers)
set -eu

BARGE=${BARGE:-bin/barge}
NODES=${CONFORMANCE_NODES:-3}
PROCS=${CONFORMANCE_PROCS:-4}
FOCUS=${CONFORMANCE_FOCUS:-'\[Conformance\]'}
SKIP=${CONFORMANCE_SKIP:-}
KIND=${CONFORMANCE_NODEKIND:-agent}
LAB=${CONFORMANCE_LAB:-$(mktemp -d /tmp/barge-conformance.XXXXXX)}
REPORT=${CONFORMANCE_REPORT:-$LAB/report}
TIMEOUT=${CONFORMANCE_TIMEOUT:-3h}

if [ "$(id -u)" != 0 ]; then
	echo "make conformance needs root: the cluster runs in a lab of network namespaces" >&2
	exit 1
fi

NODE_PID=""
cleanup() {
	[ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null || true
	"$BARGE" lab down --dir "$LAB" >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

case "$KIND" in
agent)
	echo "== lab: 3 servers and $NODES nodes in $LAB"
	"$BARGE" lab up --servers 3 --nodes "$NODES" --dir "$LAB"
	sh chaos/conformance/images.sh "$LAB"
	;;
hollow)
	echo "== lab: 3 servers in $LAB"
	"$BARGE" lab up --servers 3 --dir "$LAB"
	;;
*)
	echo "unknown CONFORMANCE_NODEKIND=$KIND (agent or hollow)" >&2
	exit 2
	;;
esac
KC="$LAB/admin.kubeconfig"
# lab up returns on a Raft leader; the API servers become ready after.
tries=0
until kubectl --kubeconfig "$KC" get --raw /readyz >/dev/null 2>&1; do
	tries=$((tries + 1))
	[ "$tries" -lt 120 ] || { echo "API servers not ready; see $LAB/logs" >&2; exit 1; }
	sleep 1
done
case "$KIND" in
agent)
	SETUP="3 barge servers and $NODES barge agents (lab)"
	;;
hollow)
	echo "== $NODES hollow nodes (simulated: specs that need running containers fail)"
	"$BARGE" hollow --kubeconfig "$KC" --count "$NODES" --prefix node \
		>"$LAB/logs/hollow.log" 2>&1 &
	NODE_PID=$!
	SETUP="3 barge servers (lab), $NODES hollow nodes"
	;;
esac
echo "== waiting for $NODES Ready nodes"
tries=0
until [ "$(kubectl --kubeconfig "$KC" get nodes --no-headers 2>/dev/null | wc -l)" -ge "$NODES" ]; do
	tries=$((tries + 1))
	[ "$tries" -lt 120 ] || { echo "nodes did not register; see $LAB/logs" >&2; exit 1; }
	sleep 1
done
kubectl --kubeconfig "$KC" wait --for=condition=Ready node --all --timeout=120s >/dev/null

echo "== conformance: focus $FOCUS, $PROCS processes; ginkgo's progress follows"
"$BARGE" conformance run --ginkgo bin/ginkgo --e2e bin/e2e.test \
	--kubeconfig "$KC" --procs "$PROCS" \
	--focus "$FOCUS" --skip "$SKIP" --report-dir "$REPORT" --timeout "$TIMEOUT" \
	--setup "$SETUP" --markdown docs/conformance.md
echo "== report: $REPORT/junit.xml; counts in docs/conformance.md"
