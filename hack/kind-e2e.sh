#!/usr/bin/env bash
# make test-e2e-kind: the e2e suite against a kind cluster, on a machine with
# Docker (it cannot run where there is no Docker engine, such as this
# project's CI, which runs the same suite on the local platform instead).
#  1. creates a kind cluster and loads the operator and KMS server images
#     from the tarballs `make image` wrote (make test-e2e-kind builds them
#     tagged kms-operator:e2e and kms-server:e2e first; no docker build);
#  2. runs the KMS server in the cluster, deploys the operator with
#     config/default (test/e2e/kind overlay), applies config/samples and waits
#     for Ready: the image and the install really work;
#  3. runs the shared suite (test/e2e) against the cluster, reaching the
#     in-cluster KMS server through a port-forward;
#  4. deletes the cluster.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
KIND="${KIND:-$REPO/bin/kind}"
IMAGES_DIR="${IMAGES_DIR:-$REPO/bin/images}"
CLUSTER="${KIND_CLUSTER:-kms-operator-e2e}"
DIR="$REPO/.kind"
mkdir -p "$DIR/logs"
export KUBECONFIG="$DIR/kubeconfig"

cleanup() {
	[[ -n "${forward:-}" ]] && kill "$forward" 2>/dev/null || true
	"$KIND" delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
}
trap cleanup EXIT

for image in kms-operator kms-server; do
	tar -xOf "$IMAGES_DIR/$image.tar" manifest.json | grep -q "\"$image:e2e\"" ||
		{ echo "kind-e2e: $IMAGES_DIR/$image.tar is not tagged $image:e2e: run make test-e2e-kind" >&2; exit 1; }
done
"$KIND" create cluster --name "$CLUSTER" --wait 120s
"$KIND" load image-archive --name "$CLUSTER" "$IMAGES_DIR/kms-operator.tar"
"$KIND" load image-archive --name "$CLUSTER" "$IMAGES_DIR/kms-server.tar"

kubectl apply -f test/e2e/kind/kms-server.yaml
kubectl -n kms-e2e rollout status deploy/kms-server --timeout=120s
kubectl apply --server-side -k test/e2e/kind
kubectl -n kms-operator-system rollout status deploy/kms-operator-controller-manager --timeout=120s

# The deployed operator watches kind-smoke only, so it never competes with
# the operators the suite starts for its own namespaces.
kubectl create namespace kind-smoke
kubectl apply -n kind-smoke -k config/samples
kubectl wait -n kind-smoke --for=condition=Ready --timeout=120s key/app-data alias/app-data grant/app-data-worker
kubectl get kms -n kind-smoke

kubectl -n kms-e2e port-forward svc/kms-server 14599:14599 >"$DIR/logs/port-forward.log" 2>&1 &
forward=$!
sleep 2
# The API server restart needs the local platform's process; kind's is a
# static Pod that the suite does not control.
AWS_ENDPOINT_URL_KMS=http://127.0.0.1:14599 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \
	AWS_EC2_METADATA_DISABLED=true OPERATOR_BIN="$REPO/bin/manager" LOCAL_DIR="$DIR" \
	go test -count=1 -tags e2e -timeout 30m ./test/e2e/ -skip 'TestResilienceAPIServerRestart'
