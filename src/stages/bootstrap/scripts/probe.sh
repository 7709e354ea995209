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
if command -v cloud-init >/dev/null 2>&1; then
  # Fresh instances: wait for cloud-init to finish (its own errors are not ours to judge).
  cloud-init status --wait >/dev/null 2>&1 || echo "cloud-init status: $?" >&2
fi
channel=""
# One call to snapd: it exits 1 when the snap is not installed.
if listed=$(snap list microk8s 2>/dev/null); then
  channel=$(printf '%s\n' "$listed" | awk 'NR==2 {print $4}')
fi
echo "@snap"
if [ -n "$channel" ]; then echo "$channel"; fi
echo "@groups"
id -nG "$u"
status=""
early=""
if [ -n "$channel" ] && [ "$role" = controller ]; then
  # The controller's node list is read while status runs (two round trips to the API at once).
  # It is used only when status answered within a second or so, so that it is as recent as a
  # read after status; when status had to wait (the API restarting), it is read again.
  nodes=$(mktemp)
  trap 'rm -f "$nodes"' EXIT
  started=$(date +%s)
  microk8s kubectl get nodes -o json >"$nodes" 2>/dev/null &
  early=$!
fi
if [ -n "$channel" ]; then
  # A worker answers at once ("acting as a node"); a controller that is restarting gets time.
  if ! status=$(microk8s status --wait-ready --timeout "$wait" --format yaml); then
    echo "microk8s is installed but not running after ${wait}s: $status" >&2
    exit 1
  fi
fi
echo "@status"
if [ -n "$status" ]; then printf '%s\n' "$status"; fi
echo "@nodes"
case "$status" in
  "" | *"acting as a node"*) ;;
  *)
    if [ -n "$early" ] && [ $(($(date +%s) - started)) -le 1 ] && wait "$early"; then
      cat "$nodes"
    else
      microk8s kubectl get nodes -o json
    fi
    ;;
esac
echo "@hosts"
while [ $# -ge 2 ]; do
  ip=$(getent hosts "$1" | awk '{print $1; exit}')
  if [ "$ip" = "$2" ]; then echo "$1"; fi
  shift 2
done
echo "@end"
