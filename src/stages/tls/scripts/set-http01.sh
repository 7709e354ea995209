#!/bin/sh
# Sets where certbot's standalone server listens when it renews a lineage: http01_port $2 and
# http01_address $3 in the [renewalparams] of its renewal config $1, which `certbot renew` reads
# (certbot 2.1, certbot/_internal/renewal.py: http01_port and http01_address are among the
# values restored from renewalparams). With controllers >= 3 every HAProxy forwards the CA's
# HTTP-01 requests there, so no renewal stops HAProxy. Atomic, keeping the file's mode; a file
# already right is left alone. Prints "set" when it changed the file.
set -eu
conf="$1"
tmp="$conf.jeeves-tmp"
if ! awk -v port="$2" -v addr="$3" '
  function emit() {
    if (!done) { print "http01_port = " port; print "http01_address = " addr; done = 1 }
  }
  /^\[/ { if (params) emit(); params = ($0 == "[renewalparams]"); print; next }
  params && /^http01_(port|address) *=/ { next }
  { print }
  END { if (params) emit(); if (!done) exit 1 }
' "$conf" >"$tmp"; then
  rm -f "$tmp"
  echo "$conf has no [renewalparams] section" >&2
  exit 1
fi
if cmp -s "$tmp" "$conf"; then
  rm -f "$tmp"
else
  chmod --reference="$conf" "$tmp"
  mv -f "$tmp" "$conf"
  echo set
fi
