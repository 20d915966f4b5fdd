#!/bin/sh
# make demo, as root: the whole cluster in a lab of network namespaces.
# kubectl → API server → store → scheduler → node → container → Service →
# pod across the overlay; then the faults barge is built for: the Raft
# leader killed, a node killed, two of three servers stopped; a snapshot
# restored live into another cluster; and nothing left behind.
set -eu

BARGE=${BARGE:-bin/barge}
KUBECTL=${KUBECTL:-$(command -v kubectl)}
TOP=$(mktemp -d /tmp/barge-demo.XXXXXX)
A=$TOP/a # the cluster
B=$TOP/b # the cluster the snapshot is restored into
T0=$(date +%s%N)
CLIENT_PID=""

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
secs() { printf '%d.%01d s' $(( $1 / 1000 )) $(( $1 % 1000 / 100 )); }
say() { printf '\n\033[1m== [%s] %s\033[0m\n' "$(secs "$(ms "$T0")")" "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
SERVER="" # the API server kubectl uses: one that is up (see pick_server)
k() { "$KUBECTL" --kubeconfig "$A/admin.kubeconfig" ${SERVER:+--server "$SERVER"} "$@"; }
kb() { "$KUBECTL" --kubeconfig "$B/admin.kubeconfig" "$@"; }
lab() { "$BARGE" lab "$@"; }
field() { # field NAME < lab status -o json
	sed -n "s/^  \"$1\": \"\([^\"]*\)\".*/\1/p"
}
# pick_server points kubectl at a server that answers Raft status calls.
pick_server() {
	addr=$(lab status --dir "$A" -o json | awk -F'"' '/"address":/ { a = $4 } /"raft": "(leader|follower)"/ { print a; exit }')
	SERVER=${addr:+https://$addr:6443}
}
# until_ok SECONDS WHAT CMD...: runs CMD until it succeeds.
until_ok() {
	limit=$1 what=$2; shift 2
	start=$(date +%s)
	until "$@" >/dev/null 2>&1; do
		[ $(( $(date +%s) - start )) -lt "$limit" ] || { echo "timed out after ${limit}s: $what"; exit 1; }
		sleep 0.1
	done
}

cleanup() {
	[ -z "$CLIENT_PID" ] || kill "$CLIENT_PID" 2>/dev/null || true
	for d in "$A" "$B"; do
		[ ! -f "$d/lab.json" ] || "$BARGE" lab down --dir "$d" >/dev/null 2>&1 || true
	done
	rm -rf "$TOP"
}
trap cleanup EXIT INT TERM

say "1. A lab: 3 servers, 3 nodes, a registry; images built from Debian packages and pushed"
run lab up --servers 3 --nodes 3 --dir "$A"
REG=$(lab status --dir "$A" -o json | field registry)
run "$BARGE" image build nginx --push "$REG/nginx:latest" --certs "$A/certs"
run k get nodes -o wide

say "2. kubectl apply: nginx in front, reaching a backend by its Service's DNS name"
cat >"$TOP/app.yaml" <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web, namespace: demo}
data:
  nginx.conf: |
    user www-data;
    worker_processes 1;
    pid /run/nginx.pid;
    daemon off;
    error_log stderr notice;
    events { worker_connections 256; }
    http {
      access_log off;
      server {
        listen 80;
        location / { proxy_pass http://backend.demo.svc.cluster.local:8080; }
      }
    }
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway, labelSelector: {matchLabels: {app: web}}}
      containers:
      - name: nginx
        image: $REG/nginx:latest
        ports: [{containerPort: 80}]
        readinessProbe: {httpGet: {path: /, port: 80}, periodSeconds: 1}
        volumeMounts: [{name: conf, mountPath: /etc/nginx/nginx.conf, subPath: nginx.conf}]
      volumes: [{name: conf, configMap: {name: web}}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, nodePort: 30080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: backend, namespace: demo}
spec:
  replicas: 3
  strategy: {rollingUpdate: {maxUnavailable: 0, maxSurge: 1}}
  selector: {matchLabels: {app: backend}}
  template:
    metadata: {labels: {app: backend}}
    spec:
      terminationGracePeriodSeconds: 5
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway, labelSelector: {matchLabels: {app: backend}}}
      containers:
      - name: httpd
        image: $REG/busybox:latest
        env: [{name: VERSION, value: v1}, {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}]
        command: [sh, -c, 'mkdir -p /www && echo "backend \$VERSION on \$NODE (\$(hostname))" > /www/index.html && exec httpd -f -p 8080 -h /www']
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
        # Leave the endpoints before stopping: no request reaches a
        # backend that is going away.
        lifecycle: {preStop: {exec: {command: [sleep, "2"]}}}
---
apiVersion: v1
kind: Service
metadata: {name: backend, namespace: demo}
spec:
  selector: {app: backend}
  ports: [{port: 8080}]
YAML
START=$(date +%s%N)
run k apply -f "$TOP/app.yaml"
run k -n demo rollout status deploy/backend --timeout=120s
run k -n demo rollout status deploy/web --timeout=120s
echo "applied → every pod ready: $(secs "$(ms "$START")")"
run k -n demo get pods -o wide

say "3. Requests: through the ClusterIP from a pod, through the NodePort from outside"
run k -n demo run client --image="$REG/busybox:latest" --restart=Never -- sleep 3600
run k -n demo wait --for=condition=Ready pod/client --timeout=60s
run k -n demo exec client -- nslookup backend.demo.svc.cluster.local
for i in 1 2 3; do run k -n demo exec client -- wget -qO- http://web.demo.svc.cluster.local/; done
NODES=$(k get nodes -o jsonpath='{range .items[*]}{.status.addresses[0].address}{" "}{end}')
for ip in $NODES; do run curl -s --max-time 5 "http://$ip:30080/"; done
POD=$(k -n demo get pods -l app=backend -o jsonpath='{.items[0].metadata.name}')
run k -n demo logs deploy/web --tail=3
run k -n demo exec "$POD" -- cat /www/index.html
k -n demo port-forward "pod/$POD" 18080:8080 >/dev/null 2>&1 &
PF=$!
until_ok 20 "port-forward" curl -s --max-time 1 http://127.0.0.1:18080/
run curl -s http://127.0.0.1:18080/
kill "$PF" 2>/dev/null || true

# A client loop from outside, through the NodePort of every node in turn,
# for the rest of the story: every failed request is counted.
FIRST_NODE=${NODES%% *}
cat >"$TOP/client.sh" <<EOF
ok=0 failed=0
while :; do
	for ip in $NODES; do
		if curl -s -o /dev/null --max-time 2 -f "http://\$ip:30080/"; then ok=\$((ok + 1)); else failed=\$((failed + 1)); fi
		echo "\$ok \$failed" > "$TOP/client.count"
	done
done
EOF
sh "$TOP/client.sh" &
CLIENT_PID=$!
count() { cat "$TOP/client.count" 2>/dev/null || echo "0 0"; }
failed_since() { set -- $(count) "$1"; echo $(( $2 - $3 )); }
requests_since() { set -- $(count) "$1"; echo $(( $1 - $3 )); }
until_ok 20 "the client loop's first request" sh -c "[ \"\$(cut -d' ' -f1 $TOP/client.count 2>/dev/null)\" -gt 0 ]"

say "4. A rolling update of the backend while the client loop runs"
F0=$(count | cut -d' ' -f2)
run k -n demo set env deploy/backend VERSION=v2
run k -n demo rollout status deploy/backend --timeout=120s
run curl -s "http://$FIRST_NODE:30080/"
set -- $(count)
echo "during the rollout: $(( $2 - F0 )) failed requests (of $1 so far)"

say "5. kill -9 the Raft leader; the new leader's controllers act; the app keeps serving"
LEADER=$(lab status --dir "$A" -o json | field leader)
F0=$(count | cut -d' ' -f2)
START=$(date +%s%N)
run lab kill --dir "$A" "$LEADER"
new_leader() { l=$(lab status --dir "$A" -o json | field leader); [ -n "$l" ] && [ "$l" != "$LEADER" ]; }
until_ok 30 "a new leader" new_leader
NEW=$(lab status --dir "$A" -o json | field leader)
echo "new leader $NEW after $(secs "$(ms "$START")")"
pick_server
START=$(date +%s%N)
until_ok 30 "scale through a survivor" k -n demo scale deploy/web --replicas=4
four_web() { [ "$(k -n demo get pods -l app=web --no-headers | wc -l)" -ge 4 ]; }
until_ok 60 "the new leader's ReplicaSet controller creating the 4th web pod" four_web
echo "scaled → 4th pod created by the new leader's controllers: $(secs "$(ms "$START")")"
run lab start --dir "$A" "$LEADER"
echo "failed requests across the leader kill: $(failed_since "$F0")"

say "6. kill a node: NotReady from gossip, its pods running elsewhere"
VICTIM=$(k -n demo get pods -l app=backend -o jsonpath='{.items[0].spec.nodeName}')
F0=$(count | cut -d' ' -f2)
START=$(date +%s%N)
run lab kill --dir "$A" "$VICTIM"
not_ready() { [ "$(k get node "$VICTIM" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" != True ]; }
until_ok 60 "$VICTIM NotReady" not_ready
echo "$VICTIM NotReady after $(secs "$(ms "$START")")"
elsewhere() { # at least 3 backend pods Running, off the victim, not terminating
	k -n demo get pods -l app=backend -o jsonpath='{range .items[*]}{.spec.nodeName} {.status.phase} {.metadata.deletionTimestamp}{"\n"}{end}' |
		awk -v v="$VICTIM" '$1 != v && $2 == "Running" && $3 == "" { n++ } END { exit !(n >= 3) }'
}
until_ok 90 "backend pods running on the other nodes" elsewhere
echo "its backend pods running elsewhere after $(secs "$(ms "$START")")"
run k -n demo get pods -o wide
run lab start --dir "$A" "$VICTIM"
until_ok 60 "$VICTIM Ready again" k wait --for=condition=Ready "node/$VICTIM" --timeout=1s
VIP=$(k get node "$VICTIM" -o jsonpath='{.status.addresses[0].address}')
until_ok 60 "$VICTIM's NodePort answering again" curl -sf --max-time 1 -o /dev/null "http://$VIP:30080/"
echo "failed requests while $VICTIM was down: $(failed_since "$F0") (the client also calls the dead node's own NodePort)"

say "7. Two of three servers stopped: no quorum, and the app still answers across nodes"
F0=$(count | cut -d' ' -f2)
R0=$(count | cut -d' ' -f1)
for s in s1 s2; do run lab kill --dir "$A" "$s"; done
run lab status --dir "$A" || true
until_ok 60 "requests answered without quorum" sh -c "[ \$(cut -d' ' -f1 $TOP/client.count) -gt $(( R0 + 300 )) ]"
echo "without quorum: $(requests_since "$R0") requests answered, $(failed_since "$F0") failed"
for s in s1 s2; do run lab start --dir "$A" "$s"; done
SERVER=""
until_ok 60 "the API answering again" k get --raw /readyz
run k get nodes

say "8. barge snapshot save, then a live restore into a fresh cluster"
endpoints() { grep -o 'https://[0-9.]*:2379' "$1/lab.json" | paste -sd, -; }
run "$BARGE" snapshot save "$TOP/demo.snap" --endpoints "$(endpoints "$A")" --certs "$A/certs"
run lab up --servers 1 --dir "$B"
run "$BARGE" snapshot restore "$TOP/demo.snap" --live --endpoints "$(endpoints "$B")" --certs "$B/certs"
until_ok 60 "the restored objects in the new cluster" kb -n demo get deploy web
run kb -n demo get deploy,svc,configmap

say "9. lab down: nothing left"
set -- $(count)
kill "$CLIENT_PID" 2>/dev/null || true
CLIENT_PID=""
ID=$(lab status --dir "$A" -o json | field id)
run lab down --dir "$B"
run lab down --dir "$A"
echo "network namespaces of the lab left: $(ip netns list | grep -c "^bg$ID-" || true)"
echo "client loop: $1 requests, $2 failed"
say "done in $(secs "$(ms "$T0")")"
