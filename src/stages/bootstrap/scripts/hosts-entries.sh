#!/bin/sh
# Idempotent /etc/hosts entries: IP NAME pairs as arguments, all in one round trip.
set -eu
while [ $# -ge 2 ]; do
  if ! grep -Eq "^$1[[:space:]]+$2\$" /etc/hosts; then
    printf '%s %s\n' "$1" "$2" >>/etc/hosts
  fi
  shift 2
done
