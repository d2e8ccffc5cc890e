#!/bin/sh
# SSM Distributor uninstall script for openclaw-token-sync: disables the timer (recording that
# it was enabled, so the install.sh of an "uninstall and reinstall" update turns it back on),
# then removes the package; the package's prerm lets a running sync finish.
# /etc/openclaw-token-sync/config.toml stays (dpkg --purge removes it).
set -eu
state=/var/lib/openclaw-token-sync
if [ -d /run/systemd/system ] && systemctl is-enabled -q openclaw-token-sync.timer 2>/dev/null; then
    mkdir -p "$state" && : > "$state/timer-enabled"
    systemctl disable -q openclaw-token-sync.timer || true
fi
if dpkg-query -W -f='${Status}' openclaw-token-sync 2>/dev/null | grep -q 'ok installed'; then
    DEBIAN_FRONTEND=noninteractive dpkg --remove openclaw-token-sync
fi
echo "openclaw-token-sync distributor: removed (config kept)"
