# barge — see README.md. Every target works on a fresh Debian machine with Go;
# `make test` installs the Debian packages the tests need.

GO        ?= go
BIN       := bin/barge
# Debian packages the tests and benchmarks drive as real clients/peers.
# command:package pairs; installed with apt-get only when the command is missing.
DEB_DEPS  := etcdctl:etcd-client etcd:etcd-server nft:nftables ip:iproute2 \
	containerd:containerd runc:runc docker-registry:docker-registry busybox:busybox-static
# make bench also drives iperf3 (bench net) and ethtool (its no-offload row).
BENCH_DEB_DEPS := iperf3:iperf3 ethtool:ethtool
# make conformance puts Debian's dig, nc and curl into its agnhost image.
CONFORMANCE_DEB_DEPS := dig:bind9-dnsutils nc.openbsd:netcat-openbsd curl:curl
DEPS ?= $(DEB_DEPS)
TEST_TIMEOUT ?= 18m

.PHONY: all build test demo bench chaos torture conformance deps vet fuzz lint clean

all: build

build:
	@mkdir -p bin
	$(GO) build -o $(BIN) ./cmd/barge

# deps installs missing Debian packages; quiet when everything is present.
deps:
	@missing=""; \
	for pair in $(DEPS); do \
		cmd=$${pair%%:*}; pkg=$${pair##*:}; \
		command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:$$missing (run as root or install them)"; exit 1; fi; \
		echo "installing:$$missing"; \
		apt-get update -qq >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

vet:
	$(GO) vet ./...

test: deps build vet
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

# fuzz runs each fuzz target briefly; interesting inputs land in testdata/fuzz.
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzReader -fuzztime 60s ./raftstore/snapfile/
	$(GO) test -run '^$$' -fuzz FuzzDecodeCommand -fuzztime 60s ./raftstore/
	$(GO) test -run '^$$' -fuzz FuzzDecodeBatch -fuzztime 60s ./raftstore/peer/
	$(GO) test -run '^$$' -fuzz FuzzDecodeEntry -fuzztime 60s ./raftstore/raftlog/
	$(GO) test -run '^$$' -fuzz FuzzGossipDecodeMeta -fuzztime 60s ./node/gossip/
	$(GO) test -run '^$$' -fuzz FuzzGossipDecodeMessage -fuzztime 30s ./node/gossip/

demo: build deps
	@sh cmd/barge/demo.sh

# bench: micro-benchmarks of the hot paths, then the store side by side
# with Debian's etcd 3.4 and etcd 3.7 built from the pinned module
# (`barge bench store`: 3-member clusters of all three on loopback,
# the same workloads through the etcd v3 client, leader-kill failover),
# kept as docs/bench/store.json and rendered into docs/benchmarks.md;
# then the control plane on barge and on etcd 3.7 (`barge bench control`:
# hollow nodes, pods to bound, a Deployment and its rollout, mutating
# calls, kills of the active server), kept as docs/bench/control.json and
# rendered as the page's Control plane section.
# BENCH_FLAGS=--quick gives a smoke run in under 3 minutes.
BENCH_FLAGS ?=
bench: build
	@$(MAKE) --no-print-directory deps DEPS="$(DEB_DEPS) $(BENCH_DEB_DEPS)"
	$(GO) build -o bin/etcd37 ./chaos/bench/etcd37
	$(GO) test -run '^$$' -bench . -benchtime 2s ./raftstore/mvcc/ ./raftstore/snapfile/ ./raftstore/watch/ ./raftstore/raftlog/
	$(GO) test -run '^$$' -bench 'FSMApply|Put16Clients' -benchtime 2s ./raftstore/
	# Service proxy: EndpointSlice change → rule in place at 100/1,000/5,000 Services (root).
	BARGE_PROXY_SYNC_BENCH=1 $(GO) test -count=1 -run '^TestSyncLatency$$' -v ./node/proxy/
	# Service connections and cluster DNS from a pod (root): new connections/s through a ClusterIP beside the pod IP; DNS queries/s and p99.
	BARGE_PROXY_CONN_BENCH=1 $(GO) test -count=1 -run '^TestConnRate$$' -v ./node/proxy/
	BARGE_DNS_BENCH=1 $(GO) test -count=1 -run '^TestDNSRate$$' -v ./node/dns/
	# Pod startup: create → Running of 100 pods on 3 agents, image present and pulled; agent RSS/CPU with 50 idle pods (root); docs/bench/pods.json.
	BARGE_POD_STARTUP_BENCH=1 $(GO) test -count=1 -run '^TestPodStartupBench$$' -v ./node/agent/
	@mkdir -p docs/bench
	$(BIN) bench store --etcd37 bin/etcd37 --json docs/bench/store.json $(BENCH_FLAGS)
	$(BIN) bench control --etcd bin/etcd37 --json docs/bench/control.json $(BENCH_FLAGS)
	# Pod network (root): iperf3 and request/response host to host beside pod to pod over VXLAN and IPIP.
	$(BIN) bench net --json docs/bench/net.json --markdown docs/bench/net.md
	# Node failure: kill -9 → NotReady and → pods Running elsewhere, hollow nodes and real agents in a lab (root).
	$(BIN) bench nodefail --kills 10 -o json > docs/bench/nodefail.json
	$(BIN) bench nodefail --lab --kills 10 -o json > docs/bench/nodefail-lab.json
	$(BIN) bench report --json docs/bench/store.json --control docs/bench/control.json --markdown docs/benchmarks.md

# torture: hundreds of kill -9s of store members under write load (during
# segment cuts, snapshots and compactions too), then every acknowledged
# write read back and every member's HashKV compared. make test runs a
# shorter one (TestCrashTorture, 32 kills). TORTURE_KILLS sets the count.
TORTURE_KILLS ?= 300
torture: build
	$(BIN) bench torture --kills $(TORTURE_KILLS)

# chaos: five servers, five minutes, every fault; needs root. The report
# (JSON, plus the porcupine visualisation if a violation is found) is kept
# in docs/chaos/.
CHAOS_FLAGS ?= --servers 5 --duration 5m --faults kill,restart,pause,partition,leader-partition,one-way --seed 1
chaos: build deps
	@mkdir -p docs/chaos
	$(BIN) chaos run $(CHAOS_FLAGS) --report docs/chaos/report.json

# conformance: Kubernetes' own conformance suite, built from the pinned
# k8s.io/kubernetes (go test -c, unchanged), run by the ginkgo CLI of the
# pinned version against a lab; counts land in docs/conformance.md.
# CONFORMANCE_FOCUS / _SKIP / _PROCS / _NODES narrow or widen the run.
conformance: build
	@$(MAKE) --no-print-directory deps DEPS="$(DEB_DEPS) $(CONFORMANCE_DEB_DEPS)"
	$(GO) build -o bin/ginkgo github.com/onsi/ginkgo/v2/ginkgo
	$(GO) test -c -o bin/e2e.test k8s.io/kubernetes/test/e2e
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags=-s -o bin/agnhost k8s.io/kubernetes/test/images/agnhost
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags=-s -o bin/nnp k8s.io/kubernetes/test/images/nonewprivs
	install -m 0644 "$$($(GO) list -m -f '{{.Dir}}' k8s.io/kubernetes)"/test/images/agnhost/porter/localhost.crt \
	   "$$($(GO) list -m -f '{{.Dir}}' k8s.io/kubernetes)"/test/images/agnhost/porter/localhost.key bin/
	@sh chaos/conformance/run.sh

clean:
	rm -rf bin
