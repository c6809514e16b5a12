# shellcheck shell=bash
# The node of the local platform: sourced by hack/local-up.sh when NODE=1, and
# uses its helpers (launch, ensure, leaf, write_kubeconfig, log, die).
#
# containerd (Debian's), kubelet, kube-proxy and kube-scheduler (bin/, built
# from hack/k8s) run as plain processes, as root. The node's address NODE_IP
# sits on an interface of its own; Pods get addresses in POD_CIDR on a bridge
# (CNI bridge + host-local + portmap + loopback) and reach the API server
# through the kubernetes Service (kube-proxy, iptables mode). There is no
# registry: the images are the tarballs in bin/images (make image), imported
# into containerd, so Pods use imagePullPolicy Never or IfNotPresent.
# Forwarded traffic is confined to the Pod bridge: nothing a Pod sends leaves
# this machine. hack/node-down.sh (run by local-down.sh) undoes all of it.
#
# Environment (all optional):
#   NODE_NAME             node name                          (default kms-node)
#   NODE_IFACE            interface holding NODE_IP          (default kmsnode0)
#   POD_CIDR              Pod addresses                      (default 10.244.0.0/24)
#   POD_BRIDGE            the Pods' bridge                   (default kmscni0)
#   KUBELET_PORT          kubelet API, on NODE_IP            (default 10250)
#   KUBELET_HEALTHZ_PORT  kubelet /healthz, on 127.0.0.1     (default 10248)
#   PROXY_HEALTHZ_PORT    kube-proxy /healthz, on 127.0.0.1  (default 10256)
#   PROXY_METRICS_PORT    kube-proxy metrics, on 127.0.0.1   (default 10249)
#   SCHEDULER_PORT        kube-scheduler, on 127.0.0.1       (default 10259)
#   IMAGES_DIR            image tarballs to import           (default <repo>/bin/images)
#   NODE_INSTALL_PACKAGES 0: fail instead of apt-get installing what is missing

: "${NODE_IP:?is set by local-up.sh}"
NODE_NAME="${NODE_NAME:-kms-node}"
NODE_IFACE="${NODE_IFACE:-kmsnode0}"
POD_CIDR="${POD_CIDR:-10.244.0.0/24}"
POD_BRIDGE="${POD_BRIDGE:-kmscni0}"
SERVICE_CIDR=10.0.0.0/24 # the API server's --service-cluster-ip-range
KUBELET_PORT="${KUBELET_PORT:-10250}"
KUBELET_HEALTHZ_PORT="${KUBELET_HEALTHZ_PORT:-10248}"
PROXY_HEALTHZ_PORT="${PROXY_HEALTHZ_PORT:-10256}"
PROXY_METRICS_PORT="${PROXY_METRICS_PORT:-10249}"
SCHEDULER_PORT="${SCHEDULER_PORT:-10259}"
IMAGES_DIR="${IMAGES_DIR:-$REPO/bin/images}"
NODE_INSTALL_PACKAGES="${NODE_INSTALL_PACKAGES:-1}"

NODE_DIR="$LOCAL_DIR/node"
CONTAINERD_SOCK="$NODE_DIR/containerd/containerd.sock"
CNI_BIN_DIR=/usr/lib/cni

# Debian packages the node needs: "file-or-command:package".
NODE_PACKAGES=(containerd:containerd runc:runc "$CNI_BIN_DIR/bridge:containernetworking-plugins"
  iptables:iptables conntrack:conntrack ip:iproute2 mount:mount)

# ---------------------------------------------------------------- preflight

node_preflight() {
  ((EUID == 0)) || die "NODE=1 needs root: the node mounts, makes network interfaces, iptables rules and cgroups"
  local b
  for b in kubelet kube-proxy kube-scheduler; do
    [[ -x "$BIN_DIR/$b" ]] || die "$BIN_DIR/$b not found (make k8s-bins builds it)"
  done
  [[ -s "$IMAGES_DIR/pause.tar" ]] || die "$IMAGES_DIR/pause.tar not found (make image builds it)"
  node_packages
  node_alone
  node_probe
}

node_packages() {
  local p want pkg
  local -a missing=()
  for p in "${NODE_PACKAGES[@]}"; do
    want=${p%%:*} pkg=${p#*:}
    if [[ "$want" == /* ]]; then [[ -x "$want" ]] && continue; else command -v "$want" >/dev/null && continue; fi
    missing+=("$pkg")
  done
  ((${#missing[@]} > 0)) || return 0
  [[ "$NODE_INSTALL_PACKAGES" == 1 ]] || die "missing Debian packages: ${missing[*]} (apt-get install ${missing[*]})"
  command -v apt-get >/dev/null || die "missing packages ${missing[*]}, and no apt-get to install them"
  log "installing ${missing[*]} with apt-get"
  local out
  export DEBIAN_FRONTEND=noninteractive
  out="$(timeout 300 apt-get -qq -o DPkg::Lock::Timeout=120 update 2>&1)" ||
    die "apt-get update failed (or took over 300s): $out"
  out="$(timeout 600 apt-get -qq -o DPkg::Lock::Timeout=120 install -y --no-install-recommends "${missing[@]}" 2>&1)" ||
    die "apt-get install ${missing[*]} failed (or took over 600s): $out"
}

# One node per machine: kubelet's state (/var/lib/kubelet, the kubepods
# cgroups) and kube-proxy's iptables chains are machine-wide.
node_alone() {
  local p name argv0
  local -a argv
  for p in /proc/[0-9]*; do
    argv=()
    { mapfile -d '' -t argv <"$p/cmdline"; } 2>/dev/null || continue
    ((${#argv[@]} > 0)) || continue
    argv0=${argv[0]} name=${argv0##*/}
    [[ "$name" == kubelet || "$name" == kube-proxy ]] || continue
    [[ "${argv[*]}" == *"$NODE_DIR/"* ]] && continue
    die "another $name runs on this machine (pid ${p#/proc/}: ${argv[*]:0:6} ...): one node per machine; stop it first (its local-down)"
  done
}

# probe WHAT COMMAND...: fail with a clear message, not a hang, where the
# kernel (or this sandbox) refuses what the node needs.
probe() {
  local what=$1 out
  shift
  if ! out="$(timeout 20 "$@" 2>&1)"; then
    die "the node cannot run here: $what refused ($*): ${out:-timed out or failed without a message}"
  fi
}

node_probe() {
  local t=$EPOCHREALTIME dir="$NODE_DIR/probe" fs
  mkdir -p "$dir"/{lower,upper,work,merged}
  fs="$(stat -fc %T /sys/fs/cgroup)"
  if [[ "$fs" == cgroup2fs ]]; then
    probe "a cgroup (v2)" mkdir /sys/fs/cgroup/kms-node-probe
    rmdir /sys/fs/cgroup/kms-node-probe
  else
    for c in memory cpu pids; do
      [[ -d "/sys/fs/cgroup/$c" ]] || die "the node cannot run here: cgroup v1 controller $c is not mounted at /sys/fs/cgroup/$c"
      probe "a $c cgroup (v1)" mkdir "/sys/fs/cgroup/$c/kms-node-probe"
      rmdir "/sys/fs/cgroup/$c/kms-node-probe"
    done
  fi
  probe "an overlay mount (containerd's snapshotter)" mount -t overlay overlay \
    -o "lowerdir=$dir/lower,upperdir=$dir/upper,workdir=$dir/work" "$dir/merged"
  umount "$dir/merged"
  rm -rf "$dir"
  probe "a network namespace" unshare --net true
  ip link delete kmsprobe0 2>/dev/null || true
  probe "a veth pair" ip link add kmsprobe0 type veth peer name kmsprobe1
  ip link delete kmsprobe0
  probe "a bridge" ip link add kmsprobe0 type bridge
  ip link delete kmsprobe0
  probe "iptables (nat table)" iptables -w 5 -t nat -S
  probe "iptables (filter table)" iptables -w 5 -t filter -S
  log "node preflight passed ($(since "$t"))"
}

# ---------------------------------------------------------------- certificates

node_certs() {
  mkdir -p "$NODE_DIR"
  [[ -s "$PKI/apiserver-kubelet-client.crt" ]] ||
    leaf apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
  [[ -s "$PKI/kubelet.crt" ]] || leaf kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
  if ! { [[ -s "$PKI/kubelet-serving.crt" ]] &&
    openssl x509 -in "$PKI/kubelet-serving.crt" -noout -checkip "$NODE_IP" | grep -q 'does match'; }; then
    leaf kubelet-serving "/CN=$NODE_NAME" serverAuth "IP:$NODE_IP,DNS:$NODE_NAME"
  fi
  [[ -s "$PKI/kube-proxy.crt" ]] || leaf kube-proxy "/CN=system:kube-proxy" clientAuth
  [[ -s "$PKI/kube-scheduler.crt" ]] || leaf kube-scheduler "/CN=system:kube-scheduler" clientAuth
}

# ---------------------------------------------------------------- network

# sysctls the node changes (kubelet sets the kernel and vm ones itself):
# node-down.sh puts back the values saved before the first start.
NODE_SYSCTLS=(net.ipv4.ip_forward vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

node_network() {
  [[ -s "$NODE_DIR/sysctl.saved" ]] || sysctl "${NODE_SYSCTLS[@]}" >"$NODE_DIR/sysctl.saved"
  if ! ip link show "$NODE_IFACE" >/dev/null 2>&1; then
    # A dummy interface where the kernel has them; else an empty bridge,
    # which holds an address as well.
    ip link add "$NODE_IFACE" type dummy 2>/dev/null ||
      probe "an interface for the node address" ip link add "$NODE_IFACE" type bridge
  fi
  ip addr replace "$NODE_IP/32" dev "$NODE_IFACE"
  ip link set "$NODE_IFACE" up
  # Service addresses kube-proxy has not rewritten end on the node's
  # interface instead of following the default route off this machine.
  ip route replace "$SERVICE_CIDR" dev "$NODE_IFACE" src "$NODE_IP"
  # Pods reach Services through the host (routed from the bridge back to it).
  sysctl -qw net.ipv4.ip_forward=1
  # ...and nothing else: forwarded traffic stays on the Pod bridge.
  iptables -w 5 -N KMS-NODE-GUARD 2>/dev/null || iptables -w 5 -F KMS-NODE-GUARD
  iptables -w 5 -A KMS-NODE-GUARD -i "$POD_BRIDGE" -o "$POD_BRIDGE" -j RETURN
  iptables -w 5 -A KMS-NODE-GUARD -i "$POD_BRIDGE" -j REJECT
  iptables -w 5 -A KMS-NODE-GUARD -o "$POD_BRIDGE" -j REJECT
  iptables -w 5 -C FORWARD -j KMS-NODE-GUARD 2>/dev/null || iptables -w 5 -I FORWARD 1 -j KMS-NODE-GUARD
  # The API server listens on every address for the Pods: only they and this
  # machine may connect.
  iptables -w 5 -N KMS-NODE-INPUT 2>/dev/null || iptables -w 5 -F KMS-NODE-INPUT
  iptables -w 5 -A KMS-NODE-INPUT -i lo -j RETURN
  iptables -w 5 -A KMS-NODE-INPUT -i "$POD_BRIDGE" -j RETURN
  iptables -w 5 -A KMS-NODE-INPUT -p tcp --dport "$APISERVER_PORT" -j REJECT
  iptables -w 5 -C INPUT -j KMS-NODE-INPUT 2>/dev/null || iptables -w 5 -I INPUT 1 -j KMS-NODE-INPUT

  mkdir -p "$NODE_DIR/cni/net.d"
  cat >"$NODE_DIR/cni/net.d/10-kms-node.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "kms-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$POD_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$NODE_DIR/cni/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

# ---------------------------------------------------------------- containerd

containerd_healthy() { timeout 3 ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1; }
containerd_args() { ARGS=(--config "$NODE_DIR/containerd/config.toml"); }
containerd_start() {
  local pause
  pause="$(image_tag "$IMAGES_DIR/pause.tar")"
  mkdir -p "$NODE_DIR/containerd"
  cat >"$NODE_DIR/containerd/config.toml" <<EOF
version = 2
root = "$NODE_DIR/containerd/root"
state = "$NODE_DIR/containerd/state"

[grpc]
  address = "$CONTAINERD_SOCK"

[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE_DIR/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause"
  # Root here lacks CAP_SYS_RESOURCE: the oom_score_adj kubelet asks for
  # sandboxes (-998) would fail every one of them in runc.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$NODE_DIR/cni/net.d"
    max_conf_num = 1
EOF
  launch containerd "${ARGS[@]}"
}

# image_tag TARBALL: the first tag in a docker-archive's manifest.json.
image_tag() {
  local tag
  tag="$(tar -xOf "$1" manifest.json | sed -n 's/.*"RepoTags":\["\([^"]*\)".*/\1/p')"
  [[ -n "$tag" ]] || die "$1 has no tag in its manifest.json"
  echo "$tag"
}

# Imports every tarball in IMAGES_DIR that containerd does not hold as built.
node_images() {
  local tar tag ref stamp t
  local -a present
  mapfile -t present < <(ctr --address "$CONTAINERD_SOCK" -n k8s.io images ls -q)
  mkdir -p "$NODE_DIR/containerd/imported"
  for tar in "$IMAGES_DIR"/*.tar; do
    tag="$(image_tag "$tar")"
    ref="docker.io/library/$tag"
    [[ "$tag" == */* ]] && ref="$tag"
    stamp="$NODE_DIR/containerd/imported/${tar##*/}"
    if [[ -f "$stamp" && ! "$tar" -nt "$stamp" ]] && printf '%s\n' "${present[@]}" | grep -qxF "$ref"; then
      continue
    fi
    t=$EPOCHREALTIME
    timeout 120 ctr --address "$CONTAINERD_SOCK" -n k8s.io images import "$tar" >/dev/null ||
      die "ctr images import $tar failed"
    touch "$stamp"
    log "imported $tag from ${tar#"$REPO/"} ($(since "$t"))"
  done
}

# ---------------------------------------------------------------- kubelet

kubelet_healthy() { [[ "$(lcurl "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz" 2>/dev/null)" == ok ]]; }
kubelet_args() {
  ARGS=(
    --config="$NODE_DIR/kubelet.yaml"
    --kubeconfig="$NODE_DIR/kubelet.kubeconfig"
    --root-dir="$NODE_DIR/kubelet"
    --hostname-override="$NODE_NAME"
    --node-ip="$NODE_IP"
  )
}
kubelet_start() {
  mkdir -p "$NODE_DIR/kubelet" "$NODE_DIR/volume-plugins"
  write_kubeconfig "$NODE_DIR/kubelet.kubeconfig" "system:node:$NODE_NAME" "$PKI/kubelet.crt" "$PKI/kubelet.key"
  cat >"$NODE_DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 here: kubelet 1.36 then only warns.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: Webhook
# No cluster DNS: Pods use Service addresses.
clusterDomain: cluster.local
volumePluginDir: $NODE_DIR/volume-plugins
podLogsDir: $NODE_DIR/pod-logs
# A test node: never evict or collect images because the disk fills up.
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF
  launch kubelet "${ARGS[@]}"
}

# ---------------------------------------------------------------- kube-proxy

proxy_healthy() { [[ "$(lcurl -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PROXY_HEALTHZ_PORT/healthz" 2>/dev/null)" == 200 ]]; }
proxy_args() {
  ARGS=(
    --kubeconfig="$NODE_DIR/kube-proxy.kubeconfig"
    --proxy-mode=iptables
    --hostname-override="$NODE_NAME"
    --cluster-cidr="$POD_CIDR"
    --healthz-bind-address="127.0.0.1:$PROXY_HEALTHZ_PORT"
    --metrics-bind-address="127.0.0.1:$PROXY_METRICS_PORT"
    --nodeport-addresses="$NODE_IP/32"
    # Leave the machine's sysctls alone: no conntrack table sizing (refused
    # here), no timeouts, no route_localnet for localhost NodePorts.
    --conntrack-max-per-core=0
    --conntrack-tcp-timeout-established=0
    --conntrack-tcp-timeout-close-wait=0
    --iptables-localhost-nodeports=false
  )
}
proxy_start() {
  write_kubeconfig "$NODE_DIR/kube-proxy.kubeconfig" system:kube-proxy "$PKI/kube-proxy.crt" "$PKI/kube-proxy.key"
  launch kube-proxy "${ARGS[@]}"
}

# ---------------------------------------------------------------- kube-scheduler

scheduler_healthy() { [[ "$(lcurl -k "https://127.0.0.1:$SCHEDULER_PORT/healthz" 2>/dev/null)" == ok ]]; }
scheduler_args() {
  ARGS=(
    --kubeconfig="$NODE_DIR/kube-scheduler.kubeconfig"
    --leader-elect=false
    --bind-address=127.0.0.1
    --secure-port="$SCHEDULER_PORT"
    --cert-dir="$NODE_DIR/kube-scheduler"
  )
}
scheduler_start() {
  write_kubeconfig "$NODE_DIR/kube-scheduler.kubeconfig" system:kube-scheduler "$PKI/kube-scheduler.crt" "$PKI/kube-scheduler.key"
  launch kube-scheduler "${ARGS[@]}"
}

# ---------------------------------------------------------------- main

# Machine-wide directories the node's programs create when missing:
# node-down.sh removes those that were not there before the node.
NODE_MACHINE_DIRS=(/var/lib/kubelet /var/log/pods /var/log/containers /var/lib/cni /run/containerd /run/netns
  /opt/containerd /etc/kubernetes /run/kubernetes /usr/libexec/kubernetes)

# node_network_up: the node's address and network rules, before the API
# server starts listening for the Pods.
node_network_up() {
  local d
  mkdir -p "$NODE_DIR"
  if [[ ! -f "$NODE_DIR/created" ]]; then
    for d in "${NODE_MACHINE_DIRS[@]}"; do [[ -e "$d" ]] || echo "$d"; done >"$NODE_DIR/created"
  fi
  # What node-down.sh needs to undo this node, whatever its environment.
  cat >"$NODE_DIR/node.env" <<EOF
NODE_NAME=$NODE_NAME
NODE_IP=$NODE_IP
NODE_IFACE=$NODE_IFACE
POD_CIDR=$POD_CIDR
POD_BRIDGE=$POD_BRIDGE
CONTAINERD_SOCK=$CONTAINERD_SOCK
EOF
  node_network
}

# node_up: the node's processes, once the control plane runs.
node_up() {
  local t=$EPOCHREALTIME deadline
  ensure containerd "" containerd_healthy containerd_start containerd_args
  node_images
  ensure kubelet "$KUBELET_HEALTHZ_PORT" kubelet_healthy kubelet_start kubelet_args
  ensure kube-proxy "$PROXY_HEALTHZ_PORT" proxy_healthy proxy_start proxy_args
  ensure kube-scheduler "$SCHEDULER_PORT" scheduler_healthy scheduler_start scheduler_args

  deadline=$((SECONDS + START_TIMEOUT))
  until "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" get node "$NODE_NAME" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail_component kubelet "node $NODE_NAME not registered after ${START_TIMEOUT}s"
    sleep 0.5
  done
  "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" wait --for=condition=Ready --timeout="${START_TIMEOUT}s" "node/$NODE_NAME" >/dev/null ||
    fail_component kubelet "node $NODE_NAME not Ready after ${START_TIMEOUT}s"
  log "node $NODE_NAME Ready at $NODE_IP ($(since "$t"))"
}
