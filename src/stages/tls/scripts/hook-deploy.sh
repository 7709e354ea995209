#!/bin/sh
# Installed by Jeeves as certbot's deploy hook: after a renewal of the lineage Jeeves manages,
# rebuilds the HAProxy PEM with the script `jeeves up` uses and has a running haproxy reload it
# (during `certbot renew` the pre hook has stopped haproxy; the post hook starts it, which loads
# the new PEM). certbot passes no arguments: Jeeves keeps them beside the shared scripts, one a
# line (the domain, the PEM's path).
set -eu
lib=/etc/letsencrypt/renewal-hooks/jeeves-haproxy
{
  read -r domain
  read -r pem
} <"$lib/deploy-hook.args"
[ "${RENEWED_LINEAGE:-}" = "/etc/letsencrypt/live/$domain" ] || exit 0
"$lib/write-pem.sh" "$domain" "$pem"
"$lib/haproxy.sh" reload
