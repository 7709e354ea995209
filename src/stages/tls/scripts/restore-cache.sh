#!/bin/sh
# Unpacks a cached lineage (tar.gz on standard input) into $1 (/etc/letsencrypt), private.
set -eu
umask 077
mkdir -p "$1"
tar xzf - -C "$1"
