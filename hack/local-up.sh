#!/usr/bin/env bash
# Start a local control plane for kms-operator as plain background processes,
# all bound to 127.0.0.1:
#   etcd -> kube-apiserver -> kube-controller-manager, plus kms-server (a local
#   AWS KMS API).
# With NODE=1 it adds a node (hack/node-up.sh: containerd, kubelet, kube-proxy,
# kube-scheduler; needs root) and the API server then also listens on the
# node's address, where Pods reach it.
# State lives under $LOCAL_DIR (default: <repo>/.local). Safe to run twice: a
# component whose recorded pid is alive and healthy is left alone.
#
# Afterwards:   source .local/env   (KUBECONFIG, AWS_* for the local KMS, KUBEBUILDER_ASSETS)
# Stop with:    hack/local-down.sh [--purge]
#
# Environment (all optional):
#   LOCAL_DIR         state dir                       (default <repo>/.local)
#   BIN_DIR           dir with etcd, kube-apiserver,
#                     kube-controller-manager, kms-server (default <repo>/bin)
#   ETCD_CLIENT_PORT  etcd client port                (default 12379)
#   ETCD_PEER_PORT    etcd peer port                  (default 12380)
#   APISERVER_PORT    kube-apiserver secure port      (default 16443)
#   KMS_PORT          kms-server port                 (default 14599)
#   AWS_REGION        region served by kms-server     (default us-east-1)
#   KMS_ACCOUNT_ID    account id for kms-server ARNs  (default: kms-server's own)
#   KMS_REALISTIC     false turns off kms-server's eventual consistency lags
#                     (default true: realistic lags of a few seconds)
#   KUBECTL           kubectl binary                  (default: kubectl on PATH)
#   START_TIMEOUT     seconds to wait per component   (default 60)
#   NODE              1: add the node (see hack/node-up.sh for its settings)
#   NODE_IP           the node's address              (default 198.51.100.10)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL_DIR="${LOCAL_DIR:-$REPO/.local}"
BIN_DIR="${BIN_DIR:-$REPO/bin}"
ETCD_CLIENT_PORT="${ETCD_CLIENT_PORT:-12379}"
ETCD_PEER_PORT="${ETCD_PEER_PORT:-12380}"
APISERVER_PORT="${APISERVER_PORT:-16443}"
KMS_PORT="${KMS_PORT:-14599}"
AWS_REGION="${AWS_REGION:-us-east-1}"
KMS_ACCOUNT_ID="${KMS_ACCOUNT_ID:-}"
KMS_REALISTIC="${KMS_REALISTIC:-true}"
KUBECTL="${KUBECTL:-kubectl}"
START_TIMEOUT="${START_TIMEOUT:-60}"
NODE="${NODE:-0}"
# A TEST-NET-2 address on an interface of the node's own: never routed
# anywhere, and not the loopback address kubelet refuses.
NODE_IP="${NODE_IP:-198.51.100.10}"

mkdir -p "$LOCAL_DIR"
LOCAL_DIR="$(cd "$LOCAL_DIR" && pwd)"
BIN_DIR="$(cd "$BIN_DIR" 2>/dev/null && pwd)" || { echo "local-up: BIN_DIR ${BIN_DIR} does not exist (build the binaries first)" >&2; exit 1; }

PKI="$LOCAL_DIR/pki"
PIDS="$LOCAL_DIR/pids"
LOGS="$LOCAL_DIR/logs"
ETCD_DATA="$LOCAL_DIR/etcd"
KMS_DATA="$LOCAL_DIR/kms"
KUBECONFIG_FILE="$LOCAL_DIR/kubeconfig"
KCM_KUBECONFIG="$LOCAL_DIR/controller-manager.kubeconfig"
ETCD_URL="http://127.0.0.1:${ETCD_CLIENT_PORT}"
APISERVER_URL="https://127.0.0.1:${APISERVER_PORT}"
KMS_URL="http://127.0.0.1:${KMS_PORT}"
mkdir -p "$PKI" "$PIDS" "$LOGS" "$ETCD_DATA" "$KMS_DATA"
chmod 700 "$PKI" "$ETCD_DATA"

# Elapsed time since $1 (a value of $EPOCHREALTIME), e.g. "3.2s".
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", b - a }'; }
T0=$EPOCHREALTIME
log() { printf 'local-up: %s\n' "$*"; }
die() { printf 'local-up: ERROR: %s\n' "$*" >&2; exit 1; }

for b in etcd kube-apiserver kube-controller-manager kms-server; do
  [[ -x "$BIN_DIR/$b" ]] || die "$BIN_DIR/$b not found or not executable (build it first)"
done
command -v openssl >/dev/null || die "openssl not found on PATH"
command -v curl >/dev/null || die "curl not found on PATH"

# curl against loopback only; never through a proxy.
lcurl() { curl --noproxy '*' --silent --show-error --max-time 3 "$@"; }

# ---------------------------------------------------------------- processes

pidfile() { echo "$PIDS/$1.pid"; }

# Prints the recorded pid of component $1 if that process is alive and is still
# the expected binary (guards against pid reuse); fails otherwise.
running_pid() {
  local name=$1 pid exe
  [[ -f "$(pidfile "$name")" ]] || return 1
  pid="$(<"$(pidfile "$name")")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  exe=""
  { IFS= read -r -d '' exe <"/proc/$pid/cmdline"; } 2>/dev/null || true
  [[ "${exe##*/}" == "$name" ]] || return 1
  echo "$pid"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

show_log() {
  local name=$1
  echo "----- last 30 lines of $LOGS/$name.log -----" >&2
  tail -n 30 "$LOGS/$name.log" >&2 || true
  echo "--------------------------------------------" >&2
}

stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

fail_component() {
  local name=$1 msg=$2 pid
  if pid="$(running_pid "$name")"; then stop_pid "$pid"; fi
  rm -f "$(pidfile "$name")"
  show_log "$name"
  die "$name: $msg (log: $LOGS/$name.log)"
}

# launch NAME ARGS...: start $BIN_DIR/NAME (else NAME on PATH) in its own
# session, detached from this shell's terminal, stdout+stderr appended to
# logs/NAME.log; the arguments are recorded in pids/NAME.args.
launch() {
  local name=$1; shift
  {
    echo
    echo "===== $(date '+%F %T') starting $name ====="
  } >>"$LOGS/$name.log"
  # ETCD_* variables would be read by etcd itself as configuration: strip them.
  local -a unset_env=()
  local v
  for v in $(compgen -e); do
    if [[ "$v" == ETCD_* ]]; then unset_env+=(-u "$v"); fi
  done
  # Ours from BIN_DIR; the node's containerd from the system.
  local exe="$BIN_DIR/$name"
  [[ -x "$exe" ]] || exe="$(command -v "$name")"
  # A non-interactive shell's background job is not a process-group leader, so
  # setsid execs in place and $! is the server's pid.
  setsid env "${unset_env[@]}" "$exe" "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  local pid=$! i
  echo "$pid" >"$(pidfile "$name")"
  printf '%q ' "$@" >"$PIDS/$name.args"
  # Let the fork -> setsid -> env -> server exec chain finish, so that the
  # pid-reuse check in running_pid sees the server's own command line.
  for ((i = 0; i < 50; i++)); do
    running_pid "$name" >/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.02
  done
}

# wait_healthy NAME CHECK_FN: poll CHECK_FN until it succeeds, failing fast if
# the process dies.
wait_healthy() {
  local name=$1 check=$2 deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    running_pid "$name" >/dev/null || fail_component "$name" "process exited during startup"
    if "$check"; then return 0; fi
    ((SECONDS < deadline)) || fail_component "$name" "not healthy after ${START_TIMEOUT}s"
    sleep 0.2
  done
}

# args_changed NAME: whether NAME runs with other arguments than ARGS. One
# started before arguments were recorded is taken as started with the
# defaults, which differ only in node mode.
args_changed() {
  local file="$PIDS/$1.args"
  if [[ -f "$file" ]]; then
    [[ "$(<"$file")" != "$(printf '%q ' "${ARGS[@]}")" ]]
  else
    node_mode
  fi
}

# ensure NAME PORT CHECK_FN START_FN [ARGS_FN]: skip if running and healthy,
# restart if running but unhealthy, otherwise start and wait. ARGS_FN sets
# ARGS, the arguments START_FN launches with: a process running with others
# is restarted.
ensure() {
  local name=$1 port=$2 check=$3 start=$4 args_fn=${5:-} pid t
  [[ -z "$args_fn" ]] || "$args_fn"
  if pid="$(running_pid "$name")" && [[ "$BIN_DIR/$name" -nt "$(pidfile "$name")" ]]; then
    # A rebuilt binary must be the one running, or a test sees stale code.
    log "$name binary is newer than the running process - restarting"
    stop_pid "$pid"
  elif pid="$(running_pid "$name")" && [[ -n "$args_fn" ]] && args_changed "$name"; then
    log "$name runs with other flags - restarting"
    stop_pid "$pid"
  elif pid="$(running_pid "$name")"; then
    if "$check"; then
      log "$name already running (pid $pid), healthy - skipped"
      return 0
    fi
    # Give a just-started process a moment before calling it unhealthy.
    t=$((SECONDS + 5))
    while ((SECONDS < t)); do sleep 0.3; "$check" && { log "$name already running (pid $pid), healthy - skipped"; return 0; }; done
    log "$name (pid $pid) is running but unhealthy - restarting"
    stop_pid "$pid"
  fi
  rm -f "$(pidfile "$name")"
  if [[ -n "$port" ]] && port_in_use "$port"; then
    die "$name: port 127.0.0.1:$port is already in use by another process (set a different port via env, or run hack/local-down.sh)"
  fi
  t=$EPOCHREALTIME
  log "starting $name ..."
  "$start"
  wait_healthy "$name" "$check"
  log "$name ready (pid $(<"$(pidfile "$name")"), $(since "$t"))"
}

# ---------------------------------------------------------------- certificates

# openssl_q ARGS...: openssl, quiet unless it fails.
openssl_q() {
  local err
  if ! err="$(openssl "$@" 2>&1 >/dev/null)"; then
    printf 'openssl %s failed:\n%s\n' "$*" "$err" >&2
    return 1
  fi
}

# leaf NAME SUBJECT EXTENDED_KEY_USAGE [SAN]: $PKI/NAME.{key,crt}, signed by
# the local CA.
leaf() {
  local n=$1 subj=$2 eku=$3 san=${4:-}
  (
    cd "$PKI"
    umask 077
    openssl_q ecparam -name prime256v1 -genkey -noout -out "$n.key"
    openssl_q req -new -key "$n.key" -subj "$subj" -out "$n.csr"
    {
      echo "basicConstraints=critical,CA:FALSE"
      echo "keyUsage=critical,digitalSignature,keyEncipherment"
      echo "extendedKeyUsage=$eku"
      [[ -z "$san" ]] || echo "subjectAltName=$san"
    } >"$n.ext"
    openssl_q x509 -req -in "$n.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 \
      -days 3650 -extfile "$n.ext" -out "$n.crt"
    rm -f "$n.csr" "$n.ext" ca.srl
  )
}

# The node's address is in the serving certificate so that Pods can reach the
# API server there (and through the kubernetes Service, 10.0.0.1).
APISERVER_SANS="IP:127.0.0.1,DNS:localhost,IP:${NODE_IP},IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"

gen_certs() {
  local f missing=0
  for f in ca.crt ca.key apiserver.crt apiserver.key admin.crt admin.key \
    controller-manager.crt controller-manager.key sa.key sa.pub; do
    [[ -s "$PKI/$f" ]] || missing=1
  done
  if ((!missing)); then
    # Made before the node's address was in it, or for another NODE_IP.
    if node_mode && ! openssl x509 -in "$PKI/apiserver.crt" -noout -checkip "$NODE_IP" | grep -q 'does match'; then
      log "re-issuing the API server certificate for $NODE_IP"
      leaf apiserver "/CN=kube-apiserver" serverAuth "$APISERVER_SANS"
    fi
    return 0
  fi
  log "generating certificates in $PKI"
  (
    cd "$PKI"
    umask 077
    rm -f -- *.crt *.key *.pub *.csr *.ext *.srl
    # CA
    openssl_q ecparam -name prime256v1 -genkey -noout -out ca.key
    openssl_q req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=kms-operator-local-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -out ca.crt
    # Service-account token signing key pair.
    openssl_q genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key
    openssl_q pkey -in sa.key -pubout -out sa.pub
  )
  leaf apiserver "/CN=kube-apiserver" serverAuth "$APISERVER_SANS"
  leaf admin "/O=system:masters/CN=kubernetes-admin" clientAuth
  # With --use-service-account-credentials=false the controller-manager acts
  # under its own identity for every controller (namespace deletion must be
  # able to delete anything), so it is in system:masters too.
  leaf controller-manager "/O=system:masters/CN=system:kube-controller-manager" clientAuth
}

b64() { base64 -w0 <"$1"; }

# write_kubeconfig FILE USER CERT KEY
write_kubeconfig() {
  local file=$1 user=$2 cert=$3 key=$4
  local tmp="$file.tmp.$$"
  (
    umask 077
    cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kms-operator-local
  cluster:
    server: ${APISERVER_URL}
    certificate-authority-data: $(b64 "$PKI/ca.crt")
users:
- name: ${user}
  user:
    client-certificate-data: $(b64 "$cert")
    client-key-data: $(b64 "$key")
contexts:
- name: kms-operator-local
  context:
    cluster: kms-operator-local
    user: ${user}
current-context: kms-operator-local
EOF
  )
  mv -f "$tmp" "$file"
}

# ---------------------------------------------------------------- etcd

etcd_healthy() {
  [[ "$(lcurl "$ETCD_URL/health" 2>/dev/null)" == *'"health":"true"'* ]]
}
etcd_start() {
  launch etcd \
    --name=local \
    --data-dir="$ETCD_DATA" \
    --listen-client-urls="$ETCD_URL" \
    --advertise-client-urls="$ETCD_URL" \
    --listen-peer-urls="http://127.0.0.1:${ETCD_PEER_PORT}" \
    --initial-advertise-peer-urls="http://127.0.0.1:${ETCD_PEER_PORT}" \
    --initial-cluster="local=http://127.0.0.1:${ETCD_PEER_PORT}" \
    --initial-cluster-state=new \
    --unsafe-no-fsync=true \
    --log-level=warn
}

# ---------------------------------------------------------------- kube-apiserver

apiserver_healthy() {
  [[ "$(lcurl --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "$APISERVER_URL/readyz" 2>/dev/null)" == "ok" ]]
}
apiserver_args() {
  mkdir -p "$LOCAL_DIR/apiserver"
  ARGS=(
    --etcd-servers="$ETCD_URL"
    --secure-port="$APISERVER_PORT"
    --cert-dir="$LOCAL_DIR/apiserver"
    --tls-cert-file="$PKI/apiserver.crt"
    --tls-private-key-file="$PKI/apiserver.key"
    --client-ca-file="$PKI/ca.crt"
    --service-account-issuer=https://kubernetes.default.svc.cluster.local
    --service-account-key-file="$PKI/sa.pub"
    --service-account-signing-key-file="$PKI/sa.key"
    --service-cluster-ip-range=10.0.0.0/24
    --allow-privileged=true
  )
  if node_mode; then
    # Pods reach the API server through the kubernetes Service, whose
    # endpoint is the advertised node address (kept by the lease
    # reconciler); listening on every address keeps loopback working. The
    # API server reaches the kubelet at the node address for logs and exec.
    ARGS+=(
      --bind-address=0.0.0.0
      --advertise-address="$NODE_IP"
      --endpoint-reconciler-type=lease
      "--authorization-mode=Node,RBAC"
      --enable-admission-plugins=NodeRestriction
      --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt"
      --kubelet-client-key="$PKI/apiserver-kubelet-client.key"
      --kubelet-certificate-authority="$PKI/ca.crt"
      --kubelet-preferred-address-types=InternalIP
    )
  else
    ARGS+=(
      --bind-address=127.0.0.1
      --advertise-address=127.0.0.1
      --endpoint-reconciler-type=none
      --authorization-mode=RBAC
    )
  fi
}
apiserver_start() { launch kube-apiserver "${ARGS[@]}"; }

# ---------------------------------------------------------------- kube-controller-manager

# No serving port (--secure-port=0): healthy means the process is alive.
kcm_healthy() { running_pid kube-controller-manager >/dev/null; }
kcm_args() {
  # Without a node, the node controllers have nothing to do; with one, the
  # lifecycle controller lifts the not-ready taint so Pods get scheduled.
  local controllers='*,-node-ipam-controller,-node-lifecycle-controller'
  node_mode && controllers='*,-node-ipam-controller'
  ARGS=(
    --kubeconfig="$KCM_KUBECONFIG"
    --secure-port=0
    --leader-elect=false
    --service-account-private-key-file="$PKI/sa.key"
    --root-ca-file="$PKI/ca.crt"
    --use-service-account-credentials=false
    --flex-volume-plugin-dir="$LOCAL_DIR/controller-manager/flexvolume"
    --controllers="$controllers"
  )
}
kcm_start() {
  launch kube-controller-manager "${ARGS[@]}"
  # It has no health endpoint: wait until its log says the garbage collector
  # has synced (it is then talking to the apiserver and collecting), failing
  # fast if it exits. If that message never shows up (wording may change in a
  # later release), go on after 15 s as long as the process is alive.
  local log="$LOGS/kube-controller-manager.log" from deadline=$((SECONDS + 15))
  from="$(grep -n '^===== .* starting kube-controller-manager' "$log" | tail -n1 | cut -d: -f1)"
  while ((SECONDS < deadline)); do
    running_pid kube-controller-manager >/dev/null || fail_component kube-controller-manager "process exited during startup"
    tail -n +"${from:-1}" "$log" | grep -q 'all resource monitors have synced' && return 0
    sleep 0.2
  done
  log "note: kube-controller-manager is running but has not logged a garbage-collector sync yet"
}

# ---------------------------------------------------------------- kms-server

kms_healthy() {
  [[ "$(lcurl -o /dev/null -w '%{http_code}' -X POST \
    -H 'X-Amz-Target: TrentService.ListKeys' \
    -H 'Content-Type: application/x-amz-json-1.1' \
    --data '{}' "$KMS_URL/" 2>/dev/null)" == "200" ]]
}
kms_start() {
  local -a extra=()
  [[ -z "$KMS_ACCOUNT_ID" ]] || extra=(--account-id "$KMS_ACCOUNT_ID")
  # Real KMS is eventually consistent; so is the local one, unless told not
  # to be (KMS_REALISTIC=false): everything run here meets it.
  [[ "$KMS_REALISTIC" == "false" ]] || extra+=(--realistic)
  launch kms-server --listen "127.0.0.1:${KMS_PORT}" --data-dir "$KMS_DATA" --region "$AWS_REGION" "${extra[@]}"
}

# ---------------------------------------------------------------- main

# Node mode: asked for, or a node of this platform runs (a later local-up
# without NODE=1 must not take the API server away from its Pods).
node_mode() { [[ "$NODE" == 1 ]] || running_pid kubelet >/dev/null; }

if [[ "$NODE" == 1 ]]; then
  # shellcheck source=hack/node-up.sh
  source "$REPO/hack/node-up.sh"
  # Root, packages and what the kernel allows, before anything starts.
  node_preflight
fi

gen_certs
if [[ "$NODE" == 1 ]]; then
  node_certs
  node_network_up
fi
write_kubeconfig "$KUBECONFIG_FILE" kubernetes-admin "$PKI/admin.crt" "$PKI/admin.key"
write_kubeconfig "$KCM_KUBECONFIG" system:kube-controller-manager "$PKI/controller-manager.crt" "$PKI/controller-manager.key"

ensure etcd "$ETCD_CLIENT_PORT" etcd_healthy etcd_start
ensure kube-apiserver "$APISERVER_PORT" apiserver_healthy apiserver_start apiserver_args
ensure kube-controller-manager "" kcm_healthy kcm_start kcm_args
ensure kms-server "$KMS_PORT" kms_healthy kms_start

ENV_FILE="$LOCAL_DIR/env"
{
  echo "# generated by hack/local-up.sh - use with: source $(printf '%q' "$ENV_FILE")"
  printf 'export KUBECONFIG=%q\n' "$KUBECONFIG_FILE"
  printf 'export AWS_ENDPOINT_URL_KMS=%q\n' "$KMS_URL"
  # The same server answers the Resource Groups Tagging API, Service Quotas
  # and STS.
  printf 'export AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API=%q\n' "$KMS_URL"
  printf 'export AWS_ENDPOINT_URL_SERVICE_QUOTAS=%q\n' "$KMS_URL"
  printf 'export AWS_ENDPOINT_URL_STS=%q\n' "$KMS_URL"
  printf 'export AWS_REGION=%q\n' "$AWS_REGION"
  echo 'export AWS_ACCESS_KEY_ID=local'
  echo 'export AWS_SECRET_ACCESS_KEY=local'
  echo 'export AWS_EC2_METADATA_DISABLED=true'
  printf 'export KUBEBUILDER_ASSETS=%q\n' "$BIN_DIR"
} >"$ENV_FILE.tmp.$$"
mv -f "$ENV_FILE.tmp.$$" "$ENV_FILE"

shopt -s nullglob
crds=("$REPO"/config/crd/bases/*.yaml)
shopt -u nullglob
if ((${#crds[@]} > 0)); then
  log "applying ${#crds[@]} CRD file(s) from config/crd/bases"
  "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" apply --server-side --force-conflicts \
    --field-manager=local-up -f "$REPO/config/crd/bases" >/dev/null
  "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" wait --for=condition=Established \
    --timeout=60s -f "$REPO/config/crd/bases" >/dev/null
  log "CRDs established"
fi

[[ "$NODE" != 1 ]] || node_up

log "all up in $(since "$T0")"
log "  kube-apiserver: $APISERVER_URL   etcd: $ETCD_URL   kms: $KMS_URL ($AWS_REGION)"
[[ "$NODE" != 1 ]] || log "  node: $NODE_NAME at $NODE_IP (Pods in $POD_CIDR)"
log "  use it:  source ${ENV_FILE#"$PWD/"}   (or: kubectl --kubeconfig $KUBECONFIG_FILE ...)"
log "  stop:    hack/local-down.sh [--purge]"
