#!/bin/sh
# Installed by Jeeves as certbot's pre hook: `certbot renew` (standalone) needs port 80, which
# haproxy holds. The post hook starts it again.
set -eu
exec /etc/letsencrypt/renewal-hooks/jeeves-haproxy/haproxy.sh stop
