#!/bin/sh
# Installed by Jeeves as certbot's pre and post hook with controllers >= 3: certbot's standalone
# server listens on a port of its own (http01_port in the lineage's renewal config) behind every
# HAProxy, so a renewal neither stops nor starts haproxy. (Written over the one-controller hooks,
# which stop and start it.)
exit 0
