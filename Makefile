# rdb: build, run, test.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
# Pinned code generators for `make proto`.
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.5.1
PROTOC_GEN_GO_VTPROTO_VERSION := v0.6.1-0.20240319094008-0393e58bdf10
GOBIN_DIR := $(CURDIR)/bin/tools

export CGO_ENABLED ?= 0

.PHONY: all build run test test-unit test-system test-failpoints test-broken test-chaos chaos vet proto bench bench-chart bench-etcd bench-targets clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/rdb ./cmd/rdb
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/rdb-shell ./cmd/rdb-shell

# A local three-node cluster in the foreground, with the shell attached.
run: build
	./scripts/run-cluster.sh

# Everything the tests need, then every test with the race detector.
test:
	./scripts/test-deps.sh
	$(GO) vet ./...
	$(GO) vet -tags failpoints,broken_localread,broken_earlyack,broken_appliedoutside ./...
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 25m ./...

test-unit:
	CGO_ENABLED=1 $(GO) test -race -short -count=1 ./...

test-system:
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 25m ./system_test/

# Crash at every failpoint, and the broken-build tests against the normal
# build (servers built with -tags failpoints, without -race).
test-failpoints:
	CGO_ENABLED=1 $(GO) test -race -count=1 -tags failpoints ./internal/failpoint/
	RDB_SYSTEM_RACE=0 CGO_ENABLED=1 $(GO) test -count=1 -timeout 10m -run 'TestFailpoints|TestBroken' -v ./system_test/

# The broken-build tests against the deliberately broken builds: each must
# observe its breakage (see docs/design.md, "Failpoints and broken builds").
test-broken:
	RDB_BROKEN=1 RDB_SYSTEM_RACE=0 CGO_ENABLED=1 $(GO) test -count=1 -timeout 10m -run 'TestBroken' -v ./system_test/
# The short tier of the fault-injection harness alone (also part of test).
test-chaos:
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 15m -run Chaos ./system_test/chaos/...

# Long randomized fault-injection runs with a summary table; partition
# scenarios need root (network namespaces). Failed runs are kept in
# CHAOS_DIR. Example: make chaos CHAOS_DURATION=2h CHAOS_SCENARIO=partition
CHAOS_DURATION ?= 30m
CHAOS_RUN      ?= 30s
CHAOS_SCENARIO ?= all
CHAOS_SEED     ?= 0
CHAOS_DIR      ?= $(CURDIR)/chaos-runs
chaos:
	$(GO) run ./system_test/chaos/cmd/chaos --duration $(CHAOS_DURATION) --run $(CHAOS_RUN) \
		--scenario $(CHAOS_SCENARIO) --seed $(CHAOS_SEED) --dir $(CHAOS_DIR)

vet:
	$(GO) vet ./...
	$(GO) vet -tags failpoints,broken_localread,broken_earlyack,broken_appliedoutside ./...

# Regenerates the committed protobuf code. Needs protoc (Debian package
# protobuf-compiler); the Go plugins are installed at pinned versions.
proto:
	@command -v protoc >/dev/null || { echo "protoc missing: apt-get install protobuf-compiler"; exit 1; }
	GOBIN=$(GOBIN_DIR) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(GOBIN_DIR) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	GOBIN=$(GOBIN_DIR) $(GO) install github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto@$(PROTOC_GEN_GO_VTPROTO_VERSION)
	protoc --plugin=$(GOBIN_DIR)/protoc-gen-go --plugin=$(GOBIN_DIR)/protoc-gen-go-grpc \
		--plugin=$(GOBIN_DIR)/protoc-gen-go-vtproto -I. \
		--go_out=. --go_opt=module=rdb --go-grpc_out=. --go-grpc_opt=module=rdb \
		--go-vtproto_out=. --go-vtproto_opt=module=rdb,features=marshal+unmarshal+size \
		command/command.proto rpc/rpcpb/rdb.proto

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The rdb bench sweep against a fresh local three-node cluster, with its
# chart: reports and chart.svg in bench-results/<time> (see
# scripts/bench-sweep.sh for DURATION, CONCURRENCY, OUT and the others).
bench-chart:
	./scripts/bench-sweep.sh

# rdb against etcd on this machine, same cells, same run (see
# scripts/bench-etcd.sh for PASSES and OUT): the table in
# bench-results/etcd-<time>/summary.md.
bench-etcd:
	./scripts/bench-etcd.sh

# Every issue 7 target measured in one run and printed against the notes'
# figures (scripts/bench-targets.sh for PASSES and OUT; about 2 minutes a
# pass): the table in bench-results/targets-<time>/targets.md.
bench-targets:
	./scripts/bench-targets.sh

clean:
	rm -rf bin
