#!/bin/sh
# Installed by Jeeves as certbot's post hook: haproxy back after `certbot renew`, whatever the
# renewal did; it loads the PEM the deploy hook rebuilt.
set -eu
exec /etc/letsencrypt/renewal-hooks/jeeves-haproxy/haproxy.sh start
