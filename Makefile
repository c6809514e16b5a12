# kms-operator. `make demo` runs it all locally; `make test` runs every test.
# Everything it needs is built from the Go module proxy into ./bin, and a
# target whose outputs are current does nothing.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

# The operator image: `make image` tags its tarball so, `make docker-build`
# its Docker image, `make deploy` installs it.
IMG ?= kms-operator:dev
LOCALBIN := $(CURDIR)/bin
LOCAL_DIR ?= $(CURDIR)/.local
export GOFLAGS ?= -buildvcs=false

# Tool versions: the ones built against k8s.io v0.36 that the proxy serves.
CONTROLLER_TOOLS_VERSION ?= v0.21.0
GOLANGCI_LINT_VERSION ?= v2.15.0
KUBERNETES_VERSION ?= v1.36.3

CONTROLLER_GEN := $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
GOLANGCI_LINT := $(LOCALBIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
HELM_VERSION ?= v3.22.0
HELM := $(LOCALBIN)/helm-$(HELM_VERSION)
# Built from hack/prometheus, whose go.mod pins the version: the module's
# v0.3XX.Y is Prometheus 3.XX.Y.
PROMTOOL := $(LOCALBIN)/promtool
PROMETHEUS := $(LOCALBIN)/prometheus
PROMETHEUS_VERSION := $(shell sed -n 's|^\tgithub.com/prometheus/prometheus v0\.3\([0-9]*\)\.\([0-9]*\).*|3.\1.\2|p' hack/prometheus/go.mod)
CHROMIUM := /usr/bin/chromium
K8S_BINS := $(LOCALBIN)/kube-apiserver $(LOCALBIN)/kube-controller-manager $(LOCALBIN)/etcd
NODE_BINS := $(LOCALBIN)/kubelet $(LOCALBIN)/kube-proxy $(LOCALBIN)/kube-scheduler
K8S_LDFLAGS := -s -w -X k8s.io/component-base/version.gitVersion=$(KUBERNETES_VERSION) -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=36
KMS_SERVER := $(LOCALBIN)/kms-server
MANAGER := $(LOCALBIN)/manager

GO_SOURCES := $(shell find . -name '*.go' -not -path './hack/*' -not -path './bin/*' -not -path './.local/*') go.mod go.sum
KMS_SERVER_SOURCES := $(shell find hack/kmsserver -type f)

.PHONY: all
all: build

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and the ClusterRole from the markers (and copy them into the Helm chart).
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./..." output:crd:artifacts:config=config/crd/bases
	rm -f charts/kms-operator/crds/*.yaml
	cp config/crd/bases/*.yaml charts/kms-operator/crds/
	cp config/rbac/role.yaml charts/kms-operator/files/role.yaml

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: fmt
fmt: ## gofmt the code.
	gofmt -l -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## go vet every module.
	go vet ./...
	go vet -tags cluster ./test/cluster/
	go -C hack/kmsserver vet ./...
	go -C hack/image vet ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) $(HELM) ## Run golangci-lint (config: .golangci.yml) and helm lint.
	$(GOLANGCI_LINT) run ./...
	cd hack/kmsserver && $(GOLANGCI_LINT) run ./...
	cd hack/image && $(GOLANGCI_LINT) run ./...
	$(HELM) lint --strict --set clusterName=lint charts/kms-operator

.PHONY: verify
verify: generate manifests ## Fail if generated code or manifests are stale, or code is not gofmt'ed.
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	@git diff --exit-code -- api config charts || { echo "generated files are stale: run make generate manifests and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- api config charts)" || { git status --porcelain -- api config charts; echo "untracked generated files"; exit 1; }

##@ Test

.PHONY: test
test: test-unit test-e2e test-cluster ## Run every test: unit, envtest integration, e2e on the local platform, and the install on its node.

.PHONY: test-unit
test-unit: $(K8S_BINS) $(HELM) $(PROMTOOL) $(KMS_SERVER) ## Unit and envtest tests (envtest uses ./bin's kube-apiserver and etcd; test/install uses helm and promtool; the KMS contract suite runs against bin/kms-server too).
	KUBEBUILDER_ASSETS=$(LOCALBIN) HELM=$(HELM) PROMTOOL=$(PROMTOOL) KMS_SERVER_BIN=$(KMS_SERVER) go test -count=1 ./...
	go -C hack/kmsserver test -count=1 ./...

.PHONY: test-e2e
test-e2e: build local-up ## End-to-end suite against the local platform (starts it if needed).
	source $(LOCAL_DIR)/env && OPERATOR_BIN=$(MANAGER) LOCAL_DIR=$(LOCAL_DIR) \
		go test -count=1 -tags e2e -timeout 30m ./test/e2e/ -run "$(E2E_RUN)"

# The chart and config/default installed on the local platform's node, with
# the images of `make image`: needs root (the node is containerd, kubelet,
# kube-proxy and kube-scheduler on this machine). It brings the node up itself
# (a prerequisite local-up has already run without NODE=1 in `make test`).
.PHONY: test-cluster
test-cluster: image $(K8S_BINS) $(NODE_BINS) $(KMS_SERVER) $(HELM) manifests ## The Helm chart and config/default in Pods on the local node (root; starts the node).
	$(LOCAL_PLATFORM) NODE=1 hack/local-up.sh
	source $(LOCAL_DIR)/env && HELM=$(HELM) IMG=$(IMG) KMS_SERVER_IMG=$(KMS_SERVER_IMG) LOCAL_DIR=$(LOCAL_DIR) \
		go test -count=1 -tags cluster -timeout 30m -v ./test/cluster/ -run "$(CLUSTER_RUN)"

# The e2e tests that need nothing of the local KMS server but KMS itself (no
# /_counts, /_config, fault injection or principal registry) and name no
# fixed account's principals (the grant and policy tests use 111122223333).
AWS_E2E_RUN ?= ^(TestAliasAppliedWithKey|TestAliasConflicts|TestAliasKeyDeleted|TestKubectlExplain|TestKeyObserve|TestKeyAdoption|TestKeyRecreateCancelsDeletion|TestLeastPrivilege|TestKeyRebound|TestKeyNoVerdictFromStaleAnswers|TestOwnershipOnEveryObservation|TestKeyIDOfAnotherRegion|TestPrimaryWithReplicasDeleted|TestPrimaryDeletionWaitsForReplicas|TestImportedKeyMaterial)$$

.PHONY: test-aws
test-aws: build local-up ## The e2e tests that need no local KMS server, against a real AWS account (KMS_OPERATOR_AWS_TESTS=1 and AWS credentials; never in CI).
	@test "$$KMS_OPERATOR_AWS_TESTS" = 1 || { echo "test-aws creates and deletes KMS keys in a real AWS account: set KMS_OPERATOR_AWS_TESTS=1 and AWS credentials (and AWS_REGION) to run it"; exit 1; }
	KUBECONFIG=$(LOCAL_DIR)/kubeconfig E2E_REAL_AWS=1 OPERATOR_BIN=$(MANAGER) LOCAL_DIR=$(LOCAL_DIR) \
		go test -count=1 -tags e2e -timeout 60m ./test/e2e/ -run '$(AWS_E2E_RUN)'

# The benchmark gets a platform of its own (other ports, .bench/), purged
# afterwards: ten thousand keys should not linger in the development one.
BENCH_DIR := $(CURDIR)/.bench
BENCH_PLATFORM := LOCAL_DIR=$(BENCH_DIR) BIN_DIR=$(LOCALBIN) ETCD_CLIENT_PORT=22379 ETCD_PEER_PORT=22380 APISERVER_PORT=26443 KMS_PORT=24599
BENCH_ARGS ?=

KIND_VERSION ?= v0.33.0

.PHONY: test-e2e-kind
test-e2e-kind: build ## The e2e suite against a kind cluster (needs Docker; creates and deletes the cluster).
	@test -x $(LOCALBIN)/kind || GOBIN=$(LOCALBIN) go install sigs.k8s.io/kind@$(KIND_VERSION)
	$(MAKE) image IMG=kms-operator:e2e KMS_SERVER_IMG=kms-server:e2e
	IMAGES_DIR=$(IMAGES_DIR) hack/kind-e2e.sh

.PHONY: bench
bench: build $(K8S_BINS) manifests ## Benchmarks on a platform of their own; prints a table (BENCH_ARGS="-sets 100 -keys 1000 ..." to choose).
	$(BENCH_PLATFORM) hack/local-up.sh
	status=0; source $(BENCH_DIR)/env && OPERATOR_BIN=$(MANAGER) LOCAL_DIR=$(BENCH_DIR) go run ./hack/bench $(BENCH_ARGS) || status=$$?; \
		$(BENCH_PLATFORM) hack/local-down.sh --purge; exit $$status

# The dashboard's picture in docs/ (hack/dashboard-shot.sh): a run of the
# operator on a platform of its own, scraped by Prometheus, the panels drawn
# and photographed by headless Chromium. Not part of `make test`.
SHOT_PLATFORM := LOCAL_DIR=$(CURDIR)/.dashshot BIN_DIR=$(LOCALBIN) ETCD_CLIENT_PORT=23379 ETCD_PEER_PORT=23380 APISERVER_PORT=23443 KMS_PORT=23599

.PHONY: dashboard-shot
dashboard-shot: build $(K8S_BINS) $(PROMETHEUS) $(CHROMIUM) manifests ## Regenerate docs/dashboard.png from a run of the operator (6.5 minutes; SHOT_MINUTES=N to choose).
	$(SHOT_PLATFORM) hack/local-up.sh
	status=0; $(SHOT_PLATFORM) MANAGER=$(MANAGER) PROMETHEUS=$(PROMETHEUS) CHROMIUM=$(CHROMIUM) hack/dashboard-shot.sh || status=$$?; \
		$(SHOT_PLATFORM) hack/local-down.sh --purge; exit $$status

##@ Build

.PHONY: build
build: $(MANAGER) $(KMS_SERVER) ## Build the operator and the local KMS server.

$(MANAGER): $(GO_SOURCES)
	CGO_ENABLED=0 go build -trimpath -o $@ .

$(KMS_SERVER): $(KMS_SERVER_SOURCES)
	CGO_ENABLED=0 go build -C hack/kmsserver -trimpath -o $@ .

.PHONY: run
run: local-up ## Run the operator from source against the local platform.
	source $(LOCAL_DIR)/env && go run . --cluster-name=local --metrics-bind-address=:18080 --health-probe-bind-address=:18081 --allow-adoption

.PHONY: docker-build
docker-build: ## Build the container image with Docker (`make image` needs none).
	docker build -t $(IMG) .

##@ Images (no Docker needed)

# Tarballs that both `docker load` and `ctr -n k8s.io images import` accept,
# built by hack/image from the static binaries: distroless-like, user 65532,
# fixed timestamps (an unchanged binary gives the same image id).
IMAGES_DIR := $(LOCALBIN)/images
IMAGE_TOOL := $(LOCALBIN)/image
PAUSE := $(LOCALBIN)/pause
IMAGE_SOURCES := $(shell find hack/image -type f)
KMS_SERVER_IMG ?= kms-server:dev
PAUSE_IMG ?= kms-node-pause:dev
# org.opencontainers.image.version: the chart's appVersion.
VERSION ?= $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$$/\1/p' charts/kms-operator/Chart.yaml)
CA_BUNDLE := /etc/ssl/certs/ca-certificates.crt
IMAGES := $(IMAGES_DIR)/kms-operator.tar $(IMAGES_DIR)/kms-server.tar $(IMAGES_DIR)/pause.tar

.PHONY: image
image: $(IMAGES) ## Build bin/images/{kms-operator,kms-server,pause}.tar (tags IMG, KMS_SERVER_IMG, PAUSE_IMG).

$(IMAGE_TOOL) $(PAUSE) &: $(IMAGE_SOURCES)
	@mkdir -p $(LOCALBIN)
	cd hack/image && CGO_ENABLED=0 go build -trimpath -o $(IMAGE_TOOL) . && \
		CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o $(PAUSE) ./pause

# An image's tag and version, rewritten only when they change: a tarball is
# rebuilt for a new tag, and left alone otherwise.
$(IMAGES_DIR)/%.args: FORCE
	@mkdir -p $(@D)
	@echo "$(IMAGE_ARGS)" | cmp -s - $@ || echo "$(IMAGE_ARGS)" >$@

$(IMAGES_DIR)/kms-operator.args: IMAGE_ARGS = -tag $(IMG) -version $(VERSION)
$(IMAGES_DIR)/kms-server.args: IMAGE_ARGS = -tag $(KMS_SERVER_IMG) -version $(VERSION) -arg=--in-cluster -arg=--listen=0.0.0.0:14599 -arg=--data-dir=/tmp/kms
$(IMAGES_DIR)/pause.args: IMAGE_ARGS = -tag $(PAUSE_IMG) -version $(VERSION)

$(IMAGES_DIR)/kms-operator.tar: $(MANAGER)
$(IMAGES_DIR)/kms-server.tar: $(KMS_SERVER)
$(IMAGES_DIR)/pause.tar: $(PAUSE)
$(IMAGES): $(IMAGES_DIR)/%.tar: $(IMAGES_DIR)/%.args $(IMAGE_TOOL) $(CA_BUNDLE)
	$(IMAGE_TOOL) -binary $(filter-out $(IMAGE_TOOL) $(CA_BUNDLE) %.args,$^) -ca-bundle $(CA_BUNDLE) $$(cat $<) -out $@

# The image's CA bundle, for HTTPS to AWS, is the build machine's.
$(CA_BUNDLE):
	apt-get install -y --no-install-recommends ca-certificates

.PHONY: FORCE
FORCE:

##@ Local platform

# The Kubernetes binaries come from `go build` in the hack/k8s module; they are
# rebuilt only when its go.mod/go.sum change. The node's (kubelet, kube-proxy,
# kube-scheduler) are built only for a node.
.PHONY: k8s-bins
k8s-bins: $(K8S_BINS) $(NODE_BINS) ## Build kube-apiserver, kube-controller-manager, etcd, kubelet, kube-proxy and kube-scheduler from source.

$(K8S_BINS) &: hack/k8s/go.mod hack/k8s/go.sum
	@mkdir -p $(LOCALBIN)
	cd hack/k8s && CGO_ENABLED=0 go build -trimpath -ldflags "$(K8S_LDFLAGS)" \
		-o $(LOCALBIN)/ k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
	cd hack/k8s && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o $(LOCALBIN)/etcd go.etcd.io/etcd/server/v3
	@touch $(K8S_BINS)

$(NODE_BINS) &: hack/k8s/go.mod hack/k8s/go.sum
	@mkdir -p $(LOCALBIN)
	cd hack/k8s && CGO_ENABLED=0 go build -trimpath -ldflags "$(K8S_LDFLAGS)" \
		-o $(LOCALBIN)/ k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kube-scheduler
	@touch $(NODE_BINS)

# NODE=1 adds a node (root): see the README's "A real node".
NODE ?=
LOCAL_PLATFORM := LOCAL_DIR=$(LOCAL_DIR) BIN_DIR=$(LOCALBIN) IMAGES_DIR=$(IMAGES_DIR)

.PHONY: local-up
local-up: $(K8S_BINS) $(KMS_SERVER) manifests $(if $(filter 1,$(NODE)),$(NODE_BINS) image) ## Start etcd, kube-apiserver, controller-manager and the KMS server; NODE=1 adds a node (root); write .local/env.
	$(LOCAL_PLATFORM) NODE=$(NODE) hack/local-up.sh

.PHONY: local-down
local-down: ## Stop the local platform, and its node: no container, mount, interface, iptables chain, cgroup or netns left.
	$(LOCAL_PLATFORM) hack/local-down.sh

.PHONY: demo
demo: build local-up ## The whole thing locally: platform, operator, samples; Ctrl-C to stop (DEMO_EXIT=1 exits once Ready).
	LOCAL_DIR=$(LOCAL_DIR) MANAGER=$(MANAGER) hack/demo.sh

##@ Deployment

.PHONY: install
install: manifests ## Install the CRDs into the cluster of the current kubeconfig.
	kubectl apply --server-side -f config/crd/bases

.PHONY: uninstall
uninstall: ## Remove the CRDs.
	kubectl delete --ignore-not-found -f config/crd/bases

.PHONY: deploy
deploy: manifests ## Deploy the operator with config/default, image IMG.
	kubectl kustomize config/default | sed "s|image: controller:latest|image: $(IMG)|" | kubectl apply --server-side -f -

.PHONY: undeploy
undeploy: ## Remove the operator deployed by `make deploy`.
	kubectl kustomize config/default | kubectl delete --ignore-not-found -f -

##@ Tools

$(CONTROLLER_GEN):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/controller-gen $@

$(GOLANGCI_LINT):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(LOCALBIN)/golangci-lint $@

# promtool (the PrometheusRule's tests) and prometheus (the dashboard
# picture) from the hack/prometheus module, which pins their version; rebuilt
# only when its go.mod/go.sum change.
$(PROMTOOL) $(PROMETHEUS): $(LOCALBIN)/%: hack/prometheus/go.mod hack/prometheus/go.sum
	@mkdir -p $(LOCALBIN)
	cd hack/prometheus && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/prometheus/common/version.Version=$(PROMETHEUS_VERSION)" \
		-o $@ github.com/prometheus/prometheus/cmd/$*
	@touch $@

# Debian's Chromium takes the dashboard's picture; fonts-dejavu-core gives
# it the font the page asks for.
$(CHROMIUM):
	apt-get install -y --no-install-recommends chromium fonts-dejavu-core || \
		{ apt-get update && apt-get install -y --no-install-recommends chromium fonts-dejavu-core; }

# The ldflags make helm assume Kubernetes 1.36 (not 1.20) for .Capabilities
# when it has no cluster to ask.
$(HELM):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install -ldflags "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=36" helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	mv $(LOCALBIN)/helm $@

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  %-14s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)
