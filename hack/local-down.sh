#!/usr/bin/env bash
# Stop the local control plane started by hack/local-up.sh, in reverse order
# (the node if any, kms-server, kube-controller-manager, kube-apiserver, etcd):
# SIGTERM, wait up to 10 s, then SIGKILL.
#
# Usage: hack/local-down.sh [--purge]
#   --purge (or PURGE=1): also delete the etcd and kms data dirs (and the
#   node's images and state), so the next local-up starts from an empty
#   cluster and an empty KMS. Certificates are kept.
# Environment: LOCAL_DIR (default <repo>/.local).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL_DIR="${LOCAL_DIR:-$REPO/.local}"
PURGE="${PURGE:-0}"

for arg in "$@"; do
  case "$arg" in
    --purge) PURGE=1 ;;
    -h | --help) sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "local-down: unknown argument: $arg (usage: hack/local-down.sh [--purge])" >&2; exit 2 ;;
  esac
done

log() { printf 'local-down: %s\n' "$*"; }

if [[ ! -d "$LOCAL_DIR" ]]; then
  log "nothing to do ($LOCAL_DIR does not exist)"
  exit 0
fi
LOCAL_DIR="$(cd "$LOCAL_DIR" && pwd)"
PIDS="$LOCAL_DIR/pids"

# The node first (make local-up NODE=1; nothing to do if it never ran).
LOCAL_DIR="$LOCAL_DIR" PURGE="$PURGE" "$REPO/hack/node-down.sh"
COMPONENTS=(kms-server kube-controller-manager kube-apiserver etcd)

# argv[0] basename of a live pid, empty if gone.
proc_name() {
  local argv0=""
  { IFS= read -r -d '' argv0 <"/proc/$1/cmdline"; } 2>/dev/null || true
  [[ -z "$argv0" ]] || echo "${argv0##*/}"
}

# stop NAME PID: SIGTERM, wait up to 10 s, then SIGKILL.
stop() {
  local name=$1 pid=$2 i
  kill -TERM "$pid" 2>/dev/null || { log "$name (pid $pid) already gone"; return 0; }
  for ((i = 0; i < 100; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "stopped $name (pid $pid)"
      return 0
    fi
    sleep 0.1
  done
  log "$name (pid $pid) did not exit after 10s - sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  log "WARNING: $name (pid $pid) is still there after SIGKILL"
}

# Processes of ours whose pid file is gone: one of our binaries whose command
# line references this LOCAL_DIR (data dir, certs or kubeconfig). One pass over
# /proc, pure bash; prints "ORDER NAME PID" lines (ORDER = stop order).
find_strays() {
  local p pid name arg idx
  local -a argv
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    argv=()
    { mapfile -d '' -t argv <"$p/cmdline"; } 2>/dev/null || continue
    ((${#argv[@]} > 0)) || continue
    name=${argv[0]##*/}
    for idx in "${!COMPONENTS[@]}"; do [[ "${COMPONENTS[idx]}" == "$name" ]] && break; done
    [[ "${COMPONENTS[idx]}" == "$name" ]] || continue
    for arg in "${argv[@]:1}"; do
      if [[ "$arg" == *"$LOCAL_DIR/"* ]]; then
        echo "$idx $name $pid"
        break
      fi
    done
  done
}

stopped=0
for name in "${COMPONENTS[@]}"; do
  pf="$PIDS/$name.pid"
  if [[ -f "$pf" ]]; then
    pid="$(<"$pf")"
    if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && [[ "$(proc_name "$pid")" == "$name" ]]; then
      stop "$name" "$pid"
      stopped=$((stopped + 1))
    else
      log "$name not running (stale pid file)"
    fi
    rm -f "$pf"
  fi
done
# Anything of ours still alive (pid file lost or overwritten)?
while read -r _ name pid; do
  [[ -n "$name" ]] || continue
  log "found $name (pid $pid) without a pid file"
  stop "$name" "$pid"
  stopped=$((stopped + 1))
done < <(find_strays | sort -n)
((stopped > 0)) || log "nothing was running"

if [[ "$PURGE" == 1 || "$PURGE" == true ]]; then
  rm -rf "$LOCAL_DIR/etcd" "$LOCAL_DIR/kms"
  log "purged etcd and kms data ($LOCAL_DIR/{etcd,kms})"
fi
