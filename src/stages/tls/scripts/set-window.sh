#!/bin/sh
# Sets certbot's renewal window for the lineage $1 to $2 (e.g. "30 days"), so that certbot's
# "due" (renew_before_expiry, read by `certbot renew` and by certonly --keep-until-expiring) is
# Jeeves' tls.renew_before. The key is top-level: replaced where it is (commented or not), else
# written before the first [section]. Atomic, keeping the file's mode; a file already right is
# left alone. Prints "set" when it changed the file.
set -eu
conf="/etc/letsencrypt/renewal/$1.conf"
tmp="$conf.jeeves-tmp"
awk -v w="$2" '
  /^#? *renew_before_expiry *=/ { if (!done) print "renew_before_expiry = " w; done = 1; next }
  /^\[/ && !done { print "renew_before_expiry = " w; done = 1 }
  { print }
  END { if (!done) print "renew_before_expiry = " w }
' "$conf" >"$tmp"
if cmp -s "$tmp" "$conf"; then
  rm -f "$tmp"
else
  chmod --reference="$conf" "$tmp"
  mv -f "$tmp" "$conf"
  echo set
fi
