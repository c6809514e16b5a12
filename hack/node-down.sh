#!/usr/bin/env bash
# Stop the node of the local platform (hack/node-up.sh, make local-up NODE=1)
# and remove what it made on this machine: no container, mount, network
# interface, iptables chain, cgroup or netns is left, and the sysctls it
# changed are put back. Run by hack/local-down.sh before the control plane
# stops; does nothing when the node was never started. Containers are
# killed, not drained: the Pods stay in the API and a restarted node starts
# them again, as after a reboot.
#
# Usage: hack/node-down.sh [--purge]   (--purge: also the images and state in .local/node)
# Environment: LOCAL_DIR (default <repo>/.local), BIN_DIR (default <repo>/bin).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL_DIR="${LOCAL_DIR:-$REPO/.local}"
PURGE="${PURGE:-0}"
[[ "${1:-}" != --purge ]] || PURGE=1

log() { printf 'node-down: %s\n' "$*"; }

NODE_DIR="$LOCAL_DIR/node"
if [[ ! -f "$NODE_DIR/node.env" ]]; then
  # Never started here, or stopped already.
  [[ "$PURGE" != 1 || ! -d "$NODE_DIR" ]] || { rm -rf "$NODE_DIR"; log "purged $NODE_DIR"; }
  exit 0
fi
NODE_DIR="$(cd "$NODE_DIR" && pwd)"
((EUID == 0)) || { log "ERROR: the node runs as root; stop it as root" >&2; exit 1; }
# The settings the node was started with (names, addresses, socket).
# shellcheck source=/dev/null
source "$NODE_DIR/node.env"
PIDS="$LOCAL_DIR/pids"

# Node processes of this platform: "NAME PID" for each of the node's binaries
# whose command line names this node's directory (pid files may be gone).
node_processes() {
  local p name
  local -a argv
  for p in /proc/[0-9]*; do
    argv=()
    { mapfile -d '' -t argv <"$p/cmdline"; } 2>/dev/null || continue
    ((${#argv[@]} > 0)) || continue
    name=${argv[0]##*/}
    case "$name" in
      kubelet | kube-proxy | kube-scheduler | containerd | containerd-shim-runc-v2) ;;
      *) continue ;;
    esac
    [[ "${argv[*]}" == *"$NODE_DIR/"* ]] && echo "$name ${p#/proc/}"
  done
}

# stop NAME...: SIGTERM the named node processes, SIGKILL after 10 s.
stop() {
  local name pid i
  local -a pids=()
  while read -r name pid; do
    [[ " $* " == *" $name "* ]] || continue
    kill -TERM "$pid" 2>/dev/null && pids+=("$pid") && log "stopping $name (pid $pid)"
  done < <(node_processes)
  for pid in "${pids[@]}"; do
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || continue 2; sleep 0.1; done
    log "pid $pid did not exit after 10s - SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  done
}

# First the node agents, so nothing restarts the containers.
stop kubelet kube-scheduler kube-proxy

# Then every container, while containerd still runs.
ctr_() { timeout 30 ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }
if [[ -S "$CONTAINERD_SOCK" ]] && ctr_ version >/dev/null 2>&1; then
  mapfile -t tasks < <(ctr_ tasks ls -q)
  for t in "${tasks[@]}"; do ctr_ tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true; done
  # containerd's CRI plugin deletes a task once it has exited.
  for ((i = 0; i < 100; i++)); do
    mapfile -t tasks < <(ctr_ tasks ls -q)
    ((${#tasks[@]} > 0)) || break
    sleep 0.2
  done
  for t in "${tasks[@]}"; do ctr_ tasks delete --force "$t" >/dev/null 2>&1 || log "WARNING: task $t remains"; done
  mapfile -t containers < <(ctr_ containers ls -q)
  for c in "${containers[@]}"; do ctr_ containers delete "$c" >/dev/null 2>&1 || true; done
  ((${#containers[@]} == 0)) || log "removed ${#containers[@]} container(s)"
fi
stop containerd
# A shim whose task could not be deleted outlives containerd.
stop containerd-shim-runc-v2
rm -f "$PIDS"/{containerd,kubelet,kube-proxy,kube-scheduler}.{pid,args}

# Mounts: kubelet's root dir (bind-mounted onto itself) and Pod volumes,
# containerd's rootfs and shm mounts, the Pods' network namespaces (and
# /run/netns, which is bind-mounted onto itself to share them). Deepest
# first; lazily if busy.
mapfile -t mounts < <(awk -v d="$NODE_DIR/" '
  { m = $5; gsub(/\\040/, " ", m) }
  index(m "/", d) == 1 || index(m "/", "/run/netns/") == 1 || index(m "/", "/var/lib/kubelet/") == 1 || index(m "/", "/run/containerd/") == 1 { print length(m) "\t" m }
' /proc/self/mountinfo | sort -rn | cut -f2- | uniq)
for m in "${mounts[@]}"; do
  umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "WARNING: cannot unmount $m"
done
((${#mounts[@]} == 0)) || log "unmounted ${#mounts[@]} mount(s)"
rm -f /run/netns/cni-*

# Network: the bridge and the node interface (their routes go with them),
# and the veths of Pods whose namespaces were just released.
for l in $(ip -o link show master "$POD_BRIDGE" 2>/dev/null | awk -F': ' '{ print $2 }' | cut -d@ -f1); do
  ip link delete "$l" 2>/dev/null || true
done
for l in "$POD_BRIDGE" "$NODE_IFACE"; do
  if ip link delete "$l" 2>/dev/null; then log "deleted interface $l"; fi
done

# iptables: kube-proxy's and kubelet's KUBE-* chains, the CNI plugins' CNI-*
# chains and our KMS-NODE-GUARD, in every table, IPv4 and IPv6: first the
# rules jumping to them, then the chains.
clean_iptables() {
  local save=$1 restore=$2 dump script
  command -v "$save" >/dev/null || return 0
  dump="$(timeout 30 "$save" 2>/dev/null)" || return 0
  script="$(awk '
    /^\*/ { table = $0; n = 0; delete chains; next }
    /^:(KUBE-|CNI-|KMS-NODE-)/ { chains[++n] = substr($1, 2); next }
    /^-A / && / -j (KUBE-|CNI-|KMS-NODE-)/ && $2 !~ /^(KUBE-|CNI-|KMS-NODE-)/ { jumps[table] = jumps[table] "\n-D" substr($0, 3) }
    /^COMMIT/ {
      body = jumps[table]
      for (i = 1; i <= n; i++) body = body "\n-F " chains[i]
      for (i = 1; i <= n; i++) body = body "\n-X " chains[i]
      if (body != "") printf "%s%s\nCOMMIT\n", table, body
    }
  ' <<<"$dump")"
  [[ -n "$script" ]] || return 0
  timeout 30 "$restore" -w 5 --noflush <<<"$script" || log "WARNING: $restore could not remove every chain"
  log "removed $(grep -c '^-X' <<<"$script") $save chain(s)"
}
clean_iptables iptables-save iptables-restore
clean_iptables ip6tables-save ip6tables-restore

# cgroups: the kubepods trees, deepest first, in every hierarchy.
n=0
while read -r d; do
  if rmdir "$d" 2>/dev/null; then n=$((n + 1)); else log "WARNING: cannot remove cgroup $d"; fi
done < <(find /sys/fs/cgroup -type d -path '*/kubepods*' 2>/dev/null | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-)
((n == 0)) || log "removed $n cgroup(s)"

# The sysctls kubelet and node-up.sh changed.
if [[ -s "$NODE_DIR/sysctl.saved" ]]; then
  while IFS=' =' read -r key value; do
    [[ "$(sysctl -n "$key" 2>/dev/null)" == "$value" ]] || sysctl -qw "$key=$value" || log "WARNING: cannot restore $key=$value"
  done <"$NODE_DIR/sysctl.saved"
  rm -f "$NODE_DIR/sysctl.saved"
fi

# What kubelet, containerd, the CNI plugins and ip-netns made outside
# .local/node (node-up.sh listed those that did not exist before).
if [[ -f "$NODE_DIR/created" ]]; then
  while read -r d; do
    [[ "$d" == /* ]] && rm -rf -- "$d"
  done <"$NODE_DIR/created"
  rm -f "$NODE_DIR/created"
fi
rm -rf "$NODE_DIR/kubelet/pods" "$NODE_DIR/pod-logs" "$NODE_DIR/containerd/state" "$NODE_DIR/cni/ipam"
if [[ "$PURGE" == 1 ]]; then
  rm -rf "$NODE_DIR"
  log "purged $NODE_DIR"
else
  rm -f "$NODE_DIR/node.env"
fi
log "node stopped"
