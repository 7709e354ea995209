#!/bin/sh
# Revokes the join tokens a run issued, once every worker it joined is in: their lines leave
# MicroK8s' cluster token file, so a token seen meanwhile (it is on `microk8s join`'s command
# line on the worker) opens nothing afterwards. k0sctl likewise invalidates its join tokens
# after use. The agent accepts a token while a line `TOKEN|EXPIRY` (or `TOKEN`) for it is in
# $SNAP_DATA/credentials/cluster-tokens.txt, and consumes one by dropping its line
# (canonical/microk8s-cluster-agent 1.32, pkg/snap/snap.go ConsumeClusterToken,
# pkg/util/token.go IsValidToken and RemoveToken); this drops ours the same way.
# The tokens come on standard input, one per line, never as arguments.
set -eu
file=/var/snap/microk8s/current/credentials/cluster-tokens.txt
[ -f "$file" ] || exit 0
ours=$(mktemp)
kept=$(mktemp "$file.XXXXXX")
trap 'rm -f -- "$ours" "$kept"' EXIT
cat >"$ours"
# The token is a line's first `|`-separated field; awk reads ours from a file, not argv.
awk -F'|' 'NR == FNR { ours[$0]; next } !($1 in ours)' "$ours" "$file" >"$kept"
# Replaced whole, with the file's owner, group and mode: stopped anywhere, the file is the old
# one (our tokens then expire as before) or the new one, never a part of it.
chown --reference="$file" "$kept"
chmod --reference="$file" "$kept"
mv -f -- "$kept" "$file"
