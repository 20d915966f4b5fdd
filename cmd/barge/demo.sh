#!/bin/sh
# make demo: three barge servers on loopback; kubectl and etcdctl as the
# clients; kill -9 of the leader, and proof that nothing acknowledged was
# lost and that kubectl keeps working against a survivor.
set -eu

# As root, the whole cluster in a lab (demo-lab.sh); without root, or with
# BARGE_DEMO_LOOPBACK=1, the part that runs on loopback.
if [ "$(id -u)" = 0 ] && [ -z "${BARGE_DEMO_LOOPBACK:-}" ]; then
	exec sh "$(dirname "$0")/demo-lab.sh"
fi
echo "The full demo (pods, Services, node and server faults) needs root: it builds"
echo "a lab of network namespaces. Running the loopback part: servers and the API."

BARGE=${BARGE:-bin/barge}
DIR=$(mktemp -d /tmp/barge-demo.XXXXXX)
BASE=$(( 20000 + $$ % 20000 ))
PIDS=""

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

cleanup() {
	for pid in $PIDS; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

CLUSTER=""
for i in 1 2 3; do
	CLUSTER="${CLUSTER:+$CLUSTER,}s$i=127.0.0.1:$((BASE + i*10))"
done
ENDPOINTS="https://127.0.0.1:$((BASE + 11)),https://127.0.0.1:$((BASE + 21)),https://127.0.0.1:$((BASE + 31))"
export BARGE_ENDPOINTS="$ENDPOINTS" BARGE_CERTS="$DIR/certs" ETCDCTL_API=3
CTL="etcdctl --cacert $DIR/certs/ca.crt --cert $DIR/certs/admin.crt --key $DIR/certs/admin.key"

say "Certificates for a cluster on 127.0.0.1"
run "$BARGE" certs init --dir "$DIR/certs" --hosts 127.0.0.1

say "Start three servers: store peer + Kubernetes API on each (logs in $DIR/s*.log)"
for i in 1 2 3; do
	"$BARGE" server --name "s$i" --data-dir "$DIR/s$i" --certs "$DIR/certs" \
		--peer-addr "127.0.0.1:$((BASE + i*10))" --client-addr "127.0.0.1:$((BASE + i*10 + 1))" \
		--api-addr "127.0.0.1:$((BASE + i*10 + 2))" \
		--initial-cluster "$CLUSTER" >"$DIR/s$i.log" 2>&1 &
	PIDS="$PIDS $!"
	eval "PID_s$i=$!"
	echo "s$i pid $!"
done

wait_leader() {
	n=0
	until "$BARGE" status -o json 2>/dev/null | grep -q '"role": "leader"'; do
		n=$((n + 1)); [ $n -lt 300 ] || { echo "no leader"; exit 1; }
		sleep 0.1
	done
}
wait_leader
say "Cluster status"
run "$BARGE" status || true

say "Write and read keys with etcdctl"
for i in 1 2 3 4 5; do $CTL --endpoints "$ENDPOINTS" put "demo/key$i" "value$i" >/dev/null; done
echo "(wrote demo/key1..5)"
run $CTL --endpoints "$ENDPOINTS" get demo/ --prefix

# kubectl talks to a peer's API port; the kubeconfig from `certs init`
# holds the admin certificate. Any kubectl on the PATH will do.
KUBECTL=$(command -v kubectl || true)
kube_on() { # kube_on PEER_INDEX ARGS...
	i=$1; shift
	"$KUBECTL" --kubeconfig "$DIR/certs/admin.kubeconfig" --server "https://127.0.0.1:$((BASE + i*10 + 2))" "$@"
}
wait_api() {
	n=0
	until kube_on "$1" get --raw /readyz >/dev/null 2>&1; do
		n=$((n + 1)); [ $n -lt 300 ] || { echo "API server not ready"; exit 1; }
		sleep 0.1
	done
}
cat >"$DIR/web.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx:1.27, ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
YAML
if [ -n "$KUBECTL" ]; then
	wait_api 1
	say "kubectl: apply a Deployment and a Service through s1's API server"
	run kube_on 1 apply -f "$DIR/web.yaml"
	run kube_on 1 get deploy,svc -o wide
	run kube_on 1 scale deployment web --replicas=3
	say "The objects live in the store under /registry"
	run $CTL --endpoints "$ENDPOINTS" get /registry/deployments/ --prefix --keys-only
	run $CTL --endpoints "$ENDPOINTS" get /registry/services/ --prefix --keys-only
else
	say "kubectl not found on the PATH: skipping the Kubernetes API part"
fi

LEADER=$("$BARGE" status -o json | tr -d ' \n' | sed 's/.*{"name":"\([^"]*\)","endpoint":"[^"]*","id":"[^"]*","role":"leader".*/\1/')
eval "LPID=\$PID_$LEADER"
SURVIVORS=""
for i in 1 2 3; do
	[ "s$i" = "$LEADER" ] || SURVIVORS="${SURVIVORS:+$SURVIVORS,}https://127.0.0.1:$((BASE + i*10 + 1))"
done
say "kill -9 the leader ($LEADER, pid $LPID) and time the first successful write"
START=$(date +%s%N)
run kill -9 "$LPID"
until $CTL --endpoints "$SURVIVORS" --command-timeout=2s put demo/after-failover ok >/dev/null 2>&1; do :; done
END=$(date +%s%N)
echo "first acknowledged write $(( (END - START) / 1000000 )) ms after the kill (etcdctl start-up included)"
export BARGE_ENDPOINTS="$SURVIVORS"
say "New leader"
run "$BARGE" status --endpoints "$SURVIVORS" || true

say "Every key is still there"
run $CTL --endpoints "$SURVIVORS" get demo/ --prefix

if [ -n "$KUBECTL" ]; then
	for i in 1 2 3; do [ "s$i" = "$LEADER" ] || ALIVE=$i; done
	say "kubectl against a survivor (s$ALIVE) keeps working"
	wait_api "$ALIVE"
	run kube_on "$ALIVE" get deploy web -o jsonpath='{.metadata.name} has {.spec.replicas} replicas{"\n"}'
	run kube_on "$ALIVE" create configmap after-failover --from-literal=ok=yes
	run kube_on "$ALIVE" get configmaps
fi

say "Stop the survivors cleanly (SIGTERM: the leader hands over first)"
for pid in $PIDS; do
	[ "$pid" = "$LPID" ] || kill -TERM "$pid" 2>/dev/null || true
done
wait 2>/dev/null || true
PIDS=""
echo "done."
