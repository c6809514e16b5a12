#!/usr/bin/env bash
# The README's first command (`make demo`): with the local platform up, run the
# operator, apply config/samples, wait for Ready and show what Kubernetes and
# KMS each see. Keeps running until Ctrl-C; DEMO_EXIT=1 exits once Ready.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL_DIR="${LOCAL_DIR:-$REPO/.local}"
MANAGER="${MANAGER:-$REPO/bin/manager}"
NS="${DEMO_NAMESPACE:-demo}"

# shellcheck source=/dev/null
source "$LOCAL_DIR/env"
log="$LOCAL_DIR/logs/demo-operator.log"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "starting the operator (log: $log)"
"$MANAGER" --metrics-bind-address=127.0.0.1:18080 --health-probe-bind-address=127.0.0.1:18081 \
	--sync-period=30s --cluster-name=demo >"$log" 2>&1 &
operator=$!
trap 'kill "$operator" 2>/dev/null; wait "$operator" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
	curl -sf --noproxy '*' http://127.0.0.1:18081/readyz >/dev/null && break
	kill -0 "$operator" 2>/dev/null || { tail -20 "$log"; exit 1; }
	sleep 0.2
done

say "the CRDs refuse bad input at admission"
bad='{"apiVersion":"kms.kmsoperator.io/v1alpha1","kind":"Key","metadata":{"name":"bad","namespace":"default"},"spec":{"keySpec":"RSA_2048","rotation":{"enabled":true},"pendingWindowInDays":3}}'
echo "$bad" | kubectl apply --dry-run=server -f - 2>&1 | sed 's/^/  /' || true

say "applying config/samples to namespace $NS (a Key, an Alias and a Grant in one apply)"
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply -n "$NS" -k "$REPO/config/samples"

say "waiting for Ready"
kubectl wait -n "$NS" --for=condition=Ready --timeout=120s key/app-data alias/app-data grant/app-data-worker

say "what Kubernetes sees (kubectl get kms -o wide)"
kubectl get kms -n "$NS" -o wide

say "what KMS sees"
go run "$REPO/hack/kmsdump" -namespace "$NS"

say "the operator's KMS calls so far (from its metrics)"
curl -s --noproxy '*' http://127.0.0.1:18080/metrics | grep '^kms_operator_kms_requests_total' | sed 's/^/  /'

if [ "${DEMO_EXIT:-0}" = 1 ]; then
	say "done (DEMO_EXIT=1). The platform keeps running: make local-down stops it."
	exit 0
fi
say "the operator keeps running: change config/samples and kubectl apply -n $NS -k config/samples, or change the key in KMS and watch it come back. Ctrl-C to stop."
wait "$operator"
