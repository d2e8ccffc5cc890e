#!/bin/sh
# SSM Distributor uninstall script for openclaw-token-sync: stops and disables the timer, then
# removes the package. /etc/openclaw-token-sync/config.toml stays (dpkg --purge removes it).
set -eu
if [ -d /run/systemd/system ]; then
    systemctl disable --now openclaw-token-sync.timer >/dev/null 2>&1 || true
fi
if dpkg-query -W -f='${Status}' openclaw-token-sync 2>/dev/null | grep -q 'ok installed'; then
    DEBIAN_FRONTEND=noninteractive dpkg --remove openclaw-token-sync
fi
echo "openclaw-token-sync distributor: removed (config kept)"
