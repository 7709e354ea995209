#!/bin/sh
# HAProxy's service: the one definition for `jeeves up` and for certbot's renewal hooks, which
# call the copy installed beside them. $1, the action:
#   stop             stop a running haproxy (certbot's standalone server needs port 80)
#   start            start a stopped one
#   reload           have a running haproxy load its files again; a stopped one is left stopped
#                    (whoever stopped it starts it, and it loads them then)
#   reload-or-start  reload a running haproxy, start a stopped one
#   enable           start it at boot
# Prints what it did (stopped, started, reloaded, enabled); nothing when there was nothing to do.
# systemctl's reload and start check the config first (haproxy -c), so a broken config leaves a
# running haproxy as it was.
set -eu
running() {
  # is-active exits 3 when inactive: its status is the answer, not its words.
  systemctl is-active --quiet haproxy >/dev/null
}
case "$1" in
stop)
  if running; then
    systemctl stop haproxy
    echo stopped
  fi
  ;;
start)
  if ! running; then
    systemctl start haproxy
    echo started
  fi
  ;;
reload)
  if running; then
    systemctl reload haproxy
    echo reloaded
  fi
  ;;
reload-or-start)
  if running; then
    systemctl reload haproxy
    echo reloaded
  else
    systemctl start haproxy
    echo started
  fi
  ;;
enable)
  systemctl enable haproxy
  echo enabled
  ;;
*)
  echo "haproxy.sh: unknown action '$1' (stop, start, reload, reload-or-start, enable)" >&2
  exit 2
  ;;
esac
