# Joinery. `make run` starts the sandbox, `make test` runs every test.
SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

ROOT := $(abspath .)
BIN := $(ROOT)/bin
export JOINERY_BIN_DIR := $(BIN)
export GOTOOLCHAIN := local

CONTROLLER_GEN := $(BIN)/controller-gen
KUSTOMIZE := $(BIN)/kustomize
TOOLS_STAMP := $(BIN)/.tools-stamp

# Packages whose tests start goroutines that share state run with -race.
RACE_PKGS := ./test/testenv/...
GO_TEST_FLAGS ?= -count=1 -timeout=30m

.PHONY: all
all: build

##@ Build

.PHONY: tools
tools: ## Build the control plane (etcd, kube-apiserver, ...), kwok, controller-gen and kustomize from Go modules into bin/.
	@hack/build-tools.sh

$(TOOLS_STAMP) $(CONTROLLER_GEN) $(KUSTOMIZE):
	@hack/build-tools.sh

.PHONY: build
build: ## Build the joinery binary into bin/.
	go build -o $(BIN)/joinery ./cmd/joinery

# The release: the version the image and release manifests carry (metadata.yaml
# must have its release series), the image repository, the image's platform.
RELEASE_VERSION ?= v0.1.0
RELEASE_IMAGE ?= ghcr.io/joinery-dev/joinery
IMAGE_GOOS ?= linux
IMAGE_GOARCH ?= amd64
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
IMAGE_LDFLAGS := -buildid= -s -w -X main.version=$(RELEASE_VERSION) -X main.revision=$(REVISION)

.PHONY: image-binary
image-binary: ## Build the manager image's binary as the Dockerfile does (reproducible: same sources, same bytes) into bin/joinery-linux-amd64.
	CGO_ENABLED=0 GOOS=$(IMAGE_GOOS) GOARCH=$(IMAGE_GOARCH) go build -trimpath -buildvcs=false -ldflags="$(IMAGE_LDFLAGS)" \
		-o $(BIN)/joinery-$(IMAGE_GOOS)-$(IMAGE_GOARCH) ./cmd/joinery
	@sha256sum $(BIN)/joinery-$(IMAGE_GOOS)-$(IMAGE_GOARCH)

.PHONY: image
image: ## Build the manager image with Docker (not available in every sandbox; make image-binary builds the same binary).
	docker build --build-arg VERSION=$(RELEASE_VERSION) --build-arg REVISION=$(REVISION) -t $(RELEASE_IMAGE):$(RELEASE_VERSION) .

.PHONY: release-manifests
release-manifests: $(KUSTOMIZE) ## Write addon-components.yaml, metadata.yaml and the cluster templates for clusterctl into out/.
	RELEASE_VERSION=$(RELEASE_VERSION) RELEASE_IMAGE=$(RELEASE_IMAGE) KUSTOMIZE=$(KUSTOMIZE) hack/release-manifests.sh $(ROOT)/out

.PHONY: manifests
manifests: tools ## Generate CRDs and RBAC from the API types and kubebuilder markers.
	$(CONTROLLER_GEN) crd:allowDangerousTypes=false paths="./api/v1alpha1/..." output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) crd:allowDangerousTypes=false paths="./api/autoscaling/..." output:crd:artifacts:config=config/crd/workload
	$(CONTROLLER_GEN) rbac:roleName=manager paths="./cmd/...;./controllers/...;./internal/manager/..." output:rbac:artifacts:config=config/rbac

.PHONY: generate
generate: tools ## Generate deepcopy code and embedded data (go generate).
	$(CONTROLLER_GEN) object paths="./api/..."
	go generate ./...

.PHONY: fmt vet
fmt: ## gofmt every Go file.
	gofmt -w $$(git ls-files '*.go')
vet: ## go vet every package.
	go vet ./...

##@ Test

.PHONY: test
test: tools ## Everything CI runs: generated files in sync, vet, unit and integration tests on real clusters.
	hack/verify-generated.sh
	go vet ./...
	go test $(GO_TEST_FLAGS) -race $(RACE_PKGS)
	go test $(GO_TEST_FLAGS) $$(go list ./... | grep -v -E '/test/testenv($$|/)')

.PHONY: e2e
e2e: tools ## Only the end-to-end suite (e2e/, about 11 minutes in two processes): CAPI Machines, cloud faults, provisioning, disruption, interruption, explain.
	go test -count=1 -timeout=30m ./e2e/... -args -ginkgo.v

.PHONY: test-unit
test-unit: ## Only the tests that need no cluster.
	go test -count=1 -short ./...

##@ Benchmark

.PHONY: bench-compare
bench-compare: ## Joinery's solver vs Karpenter v1.15.0 on Karpenter's benchmark workload (bench/README.md; BENCH_FLAGS='-sizes 1000,5000,20000 -rounds 5').
	cd bench && GOTOOLCHAIN=auto go run -mod=mod ./cmd/bench-compare $(BENCH_FLAGS)

# bench-fleet's scenario: workload clusters and pending pods per cluster.
CLUSTERS ?= 20
PODS ?= 100

.PHONY: bench-fleet
bench-fleet: tools ## One fleet scenario end to end, one line: clusters, pods, Machines, latencies, manager heap (per idle cluster) and CPU (CLUSTERS=20 PODS=100).
	go run ./hack/bench-e2e -scenarios $(CLUSTERS)x$(PODS) -line

# soak's run: how long churn and faults last, their seed, and how many
# workload clusters (make soak DURATION=30m SEED=7 SCALE=2).
DURATION ?= 30m
SEED ?= 1
SCALE ?= 2

.PHONY: soak
soak: tools ## Chaos soak on the testbed: churn, faults and manager kills, invariants checked throughout; prints one `soak:` line (test/soak).
	go run ./hack/soak -duration $(DURATION) -seed $(SEED) -clusters $(SCALE)

.PHONY: bench-e2e
bench-e2e: tools ## Provisioning end to end on the testbed: 1000 pending pods in one cluster, then 20 clusters x 100 (BENCH_E2E_FLAGS='-scenarios 1x1000').
	go run ./hack/bench-e2e $(BENCH_E2E_FLAGS)

##@ Run

.PHONY: run
run: tools build ## The sandbox: a management cluster, workload clusters, a simulated AWS and Joinery (state in .sandbox/, Ctrl-C stops it).
	$(BIN)/joinery sandbox --dir $(ROOT)/.sandbox --samples $(ROOT)/config/samples $(SANDBOX_FLAGS)

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z0-9_-]+:.*##/ { printf "  %-14s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)
