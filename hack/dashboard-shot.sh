#!/usr/bin/env bash
# Takes docs/dashboard.png, the picture of the chart's Grafana dashboard
# (charts/kms-operator/dashboards/kms-operator.json) in the README, from a
# run of the operator: `make dashboard-shot` starts a platform of its own
# (.dashshot/, other ports), runs this script and purges the platform.
#
# With the platform up (source $LOCAL_DIR/env works), it:
#   1. starts Prometheus (bin/prometheus, built from hack/prometheus) scraping
#      the operator's /metrics every 5 s, and the operator (bin/manager);
#   2. drives a workload for SHOT_MINUTES: 40 sets (Key, Alias, Grant) at
#      once under AWS's quotas and the operator's pacing; then two minutes of
#      injected faults (throttled DescribeKey, failing ListGrants, slow
#      GetKeyPolicy), disabled keys, keys scheduled for deletion behind the
#      operator's back, an Alias in conflict and one waiting for a missing
#      Key; then faults off and 10 sets deleted;
#   3. renders the dashboard's panels from Prometheus with hack/dashshot
#      (the queries as Grafana runs them, drawn on the dashboard's grid) and
#      photographs the page with headless Chromium.
# Not part of `make test`: it takes minutes and only makes a picture.
#
# Environment: LOCAL_DIR (the platform's state), MANAGER, PROMETHEUS,
# CHROMIUM (binaries), SHOT_MINUTES (default 6), OUT (default
# docs/dashboard.png), METRICS_PORT, PROBE_PORT, PROMETHEUS_PORT
# (23080, 23081, 23090).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL_DIR="${LOCAL_DIR:-$REPO/.dashshot}"
MANAGER="${MANAGER:-$REPO/bin/manager}"
PROMETHEUS="${PROMETHEUS:-$REPO/bin/prometheus}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
SHOT_MINUTES="${SHOT_MINUTES:-6}"
OUT="${OUT:-$REPO/docs/dashboard.png}"
METRICS_PORT="${METRICS_PORT:-23080}"
PROBE_PORT="${PROBE_PORT:-23081}"
PROMETHEUS_PORT="${PROMETHEUS_PORT:-23090}"
NS=shop
SETS=40

# shellcheck source=/dev/null
source "$LOCAL_DIR/env"
WORK="$LOCAL_DIR/dashshot"
rm -rf "$WORK"
mkdir -p "$WORK"
T0=$(date +%s)
log() { printf 'dashboard-shot: [%4ds] %s\n' $(($(date +%s) - T0)) "$*"; }
lcurl() { curl --noproxy '*' -sf --max-time 10 "$@"; }

pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# wait_for URL NAME PID: until URL answers, or NAME's process is gone.
wait_for() {
	local i
	for ((i = 0; i < 150; i++)); do
		lcurl -o /dev/null "$1" && return 0
		kill -0 "$3" 2>/dev/null || { log "$2 exited: see $WORK/$2.log"; tail -20 "$WORK/$2.log"; exit 1; }
		sleep 0.2
	done
	log "$2 did not answer $1 in 30 s"
	exit 1
}

cat >"$WORK/prometheus.yml" <<EOF
global: {scrape_interval: 5s, evaluation_interval: 5s}
scrape_configs:
  - job_name: kms-operator-metrics
    static_configs:
      - targets: ["127.0.0.1:$METRICS_PORT"]
        labels: {namespace: kms-system}
EOF
"$PROMETHEUS" --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
	--web.listen-address="127.0.0.1:$PROMETHEUS_PORT" >"$WORK/prometheus.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" prometheus "$!"
log "prometheus up on 127.0.0.1:$PROMETHEUS_PORT"

# AWS's default quotas on the KMS server, as in a real account: the operator
# paces itself to 0.8 of them.
kms_config() { # kms_config JQ_FILTER: rewrite the KMS server's configuration
	lcurl "$AWS_ENDPOINT_URL_KMS/_config" | jq "$1" | lcurl -X PUT --data-binary @- -o /dev/null "$AWS_ENDPOINT_URL_KMS/_config"
}
kms_config '.quotas = "aws"'

"$MANAGER" --cluster-name=dashshot --sync-period=1m \
	--metrics-bind-address="127.0.0.1:$METRICS_PORT" --health-probe-bind-address="127.0.0.1:$PROBE_PORT" \
	>"$WORK/manager.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$PROBE_PORT/readyz" manager "$!"
log "operator up; metrics on 127.0.0.1:$METRICS_PORT"
sleep 10

# set N: a Key (rotation, tags, deletion on delete), its Alias and a Grant.
set_yaml() {
	cat <<EOF
---
apiVersion: kms.kmsoperator.io/v1alpha1
kind: Key
metadata: {name: app-$1}
spec:
  description: dashboard run key $1
  rotation: {enabled: true}
  tags: {team: shop}
  deletionPolicy: Delete
  pendingWindowInDays: 7
---
apiVersion: kms.kmsoperator.io/v1alpha1
kind: Alias
metadata: {name: app-$1}
spec: {name: alias/shop/app-$1, targetKeyRef: {name: app-$1}}
---
apiVersion: kms.kmsoperator.io/v1alpha1
kind: Grant
metadata: {name: app-$1-worker}
spec:
  keyRef: {name: app-$1}
  granteePrincipal: arn:aws:iam::111122223333:role/shop-worker
  operations: [Encrypt, Decrypt, GenerateDataKey]
EOF
}
kubectl create namespace "$NS" >/dev/null
for ((i = 1; i <= SETS; i++)); do set_yaml "$i"; done >"$WORK/sets.yaml"
kubectl apply -n "$NS" -f "$WORK/sets.yaml" >/dev/null
log "applied $SETS sets (Key, Alias, Grant)"
kubectl wait -n "$NS" --for=condition=Ready --timeout=5m key --all >/dev/null
log "every Key Ready"
sleep 30

kms_config '.faults = [
	{"op": "DescribeKey", "kind": "throttle", "rate": 0.3},
	{"op": "ListGrants", "kind": "internal", "rate": 0.3},
	{"op": "GetKeyRotationStatus", "kind": "latency", "latency": "300ms", "rate": 0.5}]'
log "faults on: DescribeKey throttled, ListGrants failing, GetKeyRotationStatus slow"
for i in 1 2 3; do
	kubectl patch -n "$NS" key "app-$i" --type merge -p '{"spec":{"enabled":false}}' >/dev/null
done
# Two keys scheduled for deletion in KMS, behind the operator's back.
for i in 4 5; do
	id=$(kubectl get -n "$NS" key "app-$i" -o jsonpath='{.status.keyID}')
	curl --noproxy '*' -sf --max-time 10 --aws-sigv4 "aws:amz:$AWS_REGION:kms" -u "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		-H 'Content-Type: application/x-amz-json-1.1' -H 'X-Amz-Target: TrentService.ScheduleKeyDeletion' \
		-d "{\"KeyId\":\"$id\",\"PendingWindowInDays\":7}" "$AWS_ENDPOINT_URL_KMS/" >/dev/null
done
kubectl apply -n "$NS" -f - >/dev/null <<EOF
apiVersion: kms.kmsoperator.io/v1alpha1
kind: Alias
metadata: {name: app-1-again}
spec: {name: alias/shop/app-1, targetKeyRef: {name: app-2}}
---
apiVersion: kms.kmsoperator.io/v1alpha1
kind: Alias
metadata: {name: orders}
spec: {name: alias/shop/orders, targetKeyRef: {name: orders}}
EOF
log "3 keys disabled, 2 scheduled for deletion in KMS, an Alias in conflict, one waiting for a missing Key"
sleep 120

kms_config '.faults = []'
log "faults off"
sleep 30
for ((i = SETS - 9; i <= SETS; i++)); do
	kubectl delete -n "$NS" --wait=false "key/app-$i" "alias/app-$i" "grant/app-$i-worker" >/dev/null
done
log "deleted 10 sets"

rest=$((T0 + SHOT_MINUTES * 60 - $(date +%s)))
if ((rest > 0)); then
	log "running on for ${rest}s"
	sleep "$rest"
fi
sleep 10 # a last scrape

end=$(date -u +%Y-%m-%dT%H:%M:%SZ)
span=$(($(date +%s) - T0 + 30))
size=$(go run "$REPO/hack/dashshot" -prometheus "http://127.0.0.1:$PROMETHEUS_PORT" \
	-dashboard "$REPO/charts/kms-operator/dashboards/kms-operator.json" -out "$WORK/dashboard.html" \
	-range "${span}s" -end "$end" -scrape-interval 5s -width 1600 \
	-caption "hack/dashboard-shot.sh: a ${SHOT_MINUTES}-minute run on the local KMS server. $SETS sets at once under AWS's quotas; 2 minutes of injected faults; keys disabled, and scheduled for deletion behind the operator's back; an Alias conflict; 10 sets deleted.")
log "rendered $WORK/dashboard.html ($size)"
mkdir -p "$(dirname "$OUT")"
# Root needs --no-sandbox; the page is a local file of our own.
"$CHROMIUM" --headless --no-sandbox --disable-gpu --hide-scrollbars --force-device-scale-factor=1 \
	--window-size="${size/x/,}" --screenshot="$OUT" "file://$WORK/dashboard.html" >"$WORK/chromium.log" 2>&1 ||
	{ tail -20 "$WORK/chromium.log"; exit 1; }
log "wrote $OUT"
