#!/bin/sh
# Writes standard input to $3 with mode $2, atomically: the temporary file $1 beside it, then a
# rename, so readers see the old file or the new one, never a part.
set -eu
mkdir -p "$(dirname "$3")"
umask 077
cat >"$1"
chmod "$2" "$1"
mv -f "$1" "$3"
