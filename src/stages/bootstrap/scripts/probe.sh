#!/bin/sh
# Bootstrap's probe: one round trip that tells the plan everything about a host.
# $1: the SSH user; $2: how long to wait for a MicroK8s that is starting or restarting
# (seconds); $3: controller or worker; then NAME IP pairs the host should resolve (the
# controller's view of its workers).
# Prints @sections and @end. An empty section means "none" (not installed, not in the group,
# no nodes); a question that cannot be answered aborts before @end, so the plan never guesses.
set -eu
u="$1"
wait="$2"
role="$3"
shift 3
nl='
'
if command -v cloud-init >/dev/null 2>&1; then
  # Fresh instances: wait for cloud-init to finish (its own errors are not ours to judge).
  cloud-init status --wait >/dev/null 2>&1 || echo "cloud-init status: $?" >&2
fi
early=""
if [ "$role" = controller ] && command -v microk8s >/dev/null 2>&1; then
  # The controller's node list is read while snapd and status answer (three questions at once).
  # It is used only when the snap is installed and status answered within a second or so of
  # this read, so that it is as recent as a read after status; when status had to wait (the API
  # restarting), it is read again. Nodes and their Leases in one kubectl (Nodes are
  # cluster-scoped: -n leaves them all).
  nodes=$(mktemp)
  trap 'rm -f "$nodes"' EXIT
  started=$(date +%s)
  microk8s kubectl get nodes,leases -n kube-node-lease -o json >"$nodes" 2>/dev/null &
  early=$!
fi
channel=""
# One call to snapd: it exits 1 when the snap is not installed. The channel is the fourth
# column of the row under the header (Name Version Rev Tracking Publisher Notes), read by the
# shell itself (no process per host for it).
if listed=$(snap list microk8s 2>/dev/null); then
  case $listed in
    *"$nl"*)
      read -r _ _ _ channel _ <<EOF
${listed#*"$nl"}
EOF
      ;;
  esac
fi
echo "@snap"
if [ -n "$channel" ]; then echo "$channel"; fi
echo "@groups"
id -nG "$u"
status=""
if [ -n "$channel" ]; then
  # A worker answers at once ("acting as a node"); a controller that is restarting gets time.
  if ! status=$(microk8s status --wait-ready --timeout "$wait" --format yaml); then
    echo "microk8s is installed but not running after ${wait}s: $status" >&2
    exit 1
  fi
fi
echo "@status"
if [ -n "$status" ]; then printf '%s\n' "$status"; fi
echo "@kubelite"
# A worker's kubelet: whether its service runs (snapd's Current column). Asked of workers only:
# a controller whose kubelite is stopped has no API, and status above has said so.
if [ -n "$channel" ] && [ "$role" = worker ]; then
  services=$(snap services microk8s.daemon-kubelite)
  while read -r _ _ current _; do
    case $current in active | inactive) echo "$current" ;; esac
  done <<EOF
$services
EOF
fi
echo "@nodes"
case "$status" in
  "" | *"acting as a node"*) ;;
  *)
    if [ -n "$early" ] && [ $(($(date +%s) - started)) -le 1 ] && wait "$early"; then
      cat "$nodes"
    else
      microk8s kubectl get nodes,leases -n kube-node-lease -o json
    fi
    ;;
esac
echo "@clock"
# The controller's clock, against which its Leases' renewTimes are read (seconds.nanoseconds).
date +%s.%N
echo "@hosts"
# One getent for every name (it takes several keys, prints a line "ADDRESS NAME ALIASES" for each
# one it finds, and exits 2 when one is missing), not a process or two per worker. A name
# resolves when the line with its expected address lists it.
names=""
pairs=""
while [ $# -ge 2 ]; do
  names="$names$1$nl"
  pairs="$pairs$2 $1$nl"
  shift 2
done
if [ -n "$names" ]; then
  # Split on newlines only: each name is one key, whatever it holds.
  IFS=$nl
  set -f
  # shellcheck disable=SC2086 # split into keys on purpose (IFS is a newline)
  found=$(getent hosts $names) || true
  set +f
  unset IFS
  while read -r want name; do
    while read -r address aliases; do
      if [ "$address" = "$want" ]; then
        case " $aliases " in *" $name "*)
          echo "$name"
          break
          ;;
        esac
      fi
    done <<EOF
$found
EOF
  done <<EOF
${pairs%"$nl"}
EOF
fi
echo "@end"
