#!/bin/sh
# The certificate lineage (live, archive, renewal config, account) as base64 of a tar.gz, for
# the cache in the state dir. $1: /etc/letsencrypt; $2: the domain. A file tar cannot read fails
# the script: the archive is written whole before anything is printed (dash has no pipefail, so
# tar and base64 are not piped).
set -eu
cd "$1"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
tar czf "$tmp" "live/$2" "archive/$2" "renewal/$2.conf" accounts
base64 -w0 "$tmp"
