#!/bin/sh
# With controllers >= 3, before the first certificate: HAProxy must run on every controller to
# forward the CA's HTTP-01 request to certbot, and it does not start without the PEM its `bind`
# names. When no PEM is there, this writes a self-signed one for the domain (1 day; 0600;
# atomically) that the certificate replaces in the same run; its key never leaves the host.
# $1: the domain; $2: the PEM's path. Prints "written" when it wrote one.
set -eu
d="$1"
pem="$2"
[ ! -e "$pem" ] || exit 0
umask 077
mkdir -p "$(dirname "$pem")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# openssl prints key-generation progress on stderr: kept for a failure only.
if ! openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=$d" \
  -keyout "$tmp/key" -out "$tmp/cert" 2>"$tmp/err"; then
  cat "$tmp/err" >&2
  exit 1
fi
cat "$tmp/key" "$tmp/cert" >"$pem.jeeves-tmp"
chmod 600 "$pem.jeeves-tmp"
mv -f "$pem.jeeves-tmp" "$pem"
echo written
