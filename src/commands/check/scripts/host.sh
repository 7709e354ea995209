#!/bin/sh
# jeeves check, one round trip per host (read-only): the root file system's use (percent) and
# the MicroK8s snap (version, tracking). Prints @sections and @end.
set -eu
echo "@disk"
df -P / | awk 'NR==2 {sub("%", "", $5); print $5}'
echo "@microk8s"
# snap list exits 1 when microk8s is not installed: then the section stays empty.
if snap list microk8s >/dev/null 2>&1; then
  snap list microk8s | awk 'NR==2 {print $2, $4}'
fi
echo "@end"
