#!/bin/sh
# `microk8s join <url> --worker`, the URL read from standard input so that the token is in no
# SSH exec request, sudo log or shell command line (microk8s itself takes it as an argument).
set -eu
IFS= read -r url
exec microk8s join "$url" --worker
