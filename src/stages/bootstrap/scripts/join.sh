#!/bin/sh
# `microk8s join <url> --worker` (a worker) or `microk8s join <url>` (a controller after the
# first: a full node of the control plane), the URL read from standard input so that the token
# is in no SSH exec request, sudo log or shell command line (microk8s itself takes it as an
# argument).
# $1: worker or controller.
set -eu
IFS= read -r url
if [ "$1" = controller ]; then
  exec microk8s join "$url"
fi
exec microk8s join "$url" --worker
