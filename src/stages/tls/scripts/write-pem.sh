#!/bin/sh
# Builds the HAProxy PEM from the lineage: key, then full chain; 0600; atomically. The one
# definition: `jeeves up` runs it, certbot's deploy hook calls the copy installed beside it.
# $1: the domain; $2: the PEM's path.
set -eu
d="$1"
pem="$2"
umask 077
mkdir -p "$(dirname "$pem")"
cat "/etc/letsencrypt/live/$d/privkey.pem" "/etc/letsencrypt/live/$d/fullchain.pem" >"$pem.jeeves-tmp"
chmod 600 "$pem.jeeves-tmp"
mv -f "$pem.jeeves-tmp" "$pem"
