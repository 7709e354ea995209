#!/bin/sh
# The tls stage's probe, one round trip: tools, the live certificate, the files Jeeves manages
# (by SHA-256) and the haproxy service. $1: the domain; $2: seconds a certificate must still be
# valid to count as fresh; then the managed files' paths. Prints @sections and @end.
set -eu
d="$1"
renew="$2"
shift 2
echo "@tools"
for t in haproxy certbot openssl; do
  if command -v "$t" >/dev/null 2>&1; then echo "$t"; fi
done
live="/etc/letsencrypt/live/$d"
echo "@cert"
if [ -r "$live/cert.pem" ] && [ -r "$live/privkey.pem" ] && [ -r "$live/fullchain.pem" ]; then
  # One openssl for the names, the end date and the renewal check: it prints what each option
  # asks for ("X509v3 Subject Alternative Name:" and its "DNS:" line, "notAfter=DATE", then
  # "Certificate will (not) expire"), and exits 1 when the certificate expires within $renew.
  if x509=$(openssl x509 -in "$live/cert.pem" -noout -ext subjectAltName -enddate -checkend "$renew"); then
    fresh=yes
  else
    fresh=no
  fi
  names=$(printf '%s\n' "$x509" | tr ',' '\n' | sed -n 's/^ *DNS://p' | sort | tr '\n' ' ')
  echo "names $names"
  end=$(printf '%s\n' "$x509" | sed -n 's/^notAfter=//p')
  not_after=$(date -d "$end" +%s)
  echo "not_after $not_after"
  echo "fresh $fresh"
  pem=$(cat "$live/privkey.pem" "$live/fullchain.pem" | sha256sum | cut -d' ' -f1)
  echo "pem $pem"
  # certbot's renewal window for the lineage (empty: its default, 30 days).
  conf="/etc/letsencrypt/renewal/$d.conf"
  if [ -r "$conf" ]; then
    window=$(sed -n 's/^renew_before_expiry *= *//p' "$conf")
    echo "window $window"
    # Where certbot's standalone server listens when it renews (empty: port 80, all addresses).
    port=$(sed -n 's/^http01_port *= *//p' "$conf")
    address=$(sed -n 's/^http01_address *= *//p' "$conf")
    echo "http01 $port $address"
  fi
fi
echo "@files"
# SHA-256, modification time (ms) and path of each managed file that is there: one stat and one
# sha256sum for all of them (not four processes a file), paired by path, so that a file removed
# meanwhile is left out rather than given another file's figures.
n=$#
for f in "$@"; do
  if [ -r "$f" ]; then set -- "$@" "$f"; fi
done
shift "$n"
if [ $# -gt 0 ]; then
  {
    stat -c '%.3Y %n' -- "$@" 2>/dev/null || true
    echo "@sums"
    sha256sum -- "$@" 2>/dev/null || true
  } | awk '
    $0 == "@sums" { sums = 1; next }
    !sums { t = $1; sub(/\./, "", t); mtime[substr($0, index($0, " ") + 1)] = t; next }
    { path = substr($0, 67); if (path in mtime) print $1, mtime[path], path }
  '
fi
echo "@service"
# is-active exits 3 when inactive: its words are the answer, not its status.
systemctl is-active haproxy 2>/dev/null | head -n1
systemctl is-enabled haproxy 2>/dev/null | head -n1
echo "@loaded"
# When the running haproxy last read its config and PEM (ms): the start of its newest process. A
# reload starts new processes (the master of master-worker mode re-executes in place and
# starts new workers), so a file changed after it is one the running haproxy has not loaded.
ticks=$(getconf CLK_TCK)
# Boot time in ms: now minus /proc/uptime (the btime of /proc/stat is whole seconds, which put
# a start up to 1 s early and made a file written just before it look unloaded).
boot_ms=$(awk -v now="$(date +%s%3N)" '{printf "%.0f", now - $1 * 1000}' /proc/uptime)
newest=""
# The host's own haproxy: the processes in this shell's network namespace. A haproxy in a pod has
# a network of its own, and so has each host of the lab, where all hosts share one process table.
pids=$(pgrep --ns $$ --nslist net -x haproxy) || pids="" # pgrep exits 1 when none runs: that is the answer
for p in $pids; do
  if [ -r "/proc/$p/stat" ]; then
    start=$(awk '{print $22}' "/proc/$p/stat")
    if [ -z "$newest" ] || [ "$start" -gt "$newest" ]; then newest=$start; fi
  fi
done
if [ -n "$newest" ]; then echo $((boot_ms + newest * 1000 / ticks)); fi
echo "@end"
